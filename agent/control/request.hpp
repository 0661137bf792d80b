// Control requests: the typed request a line carries, which the server parses once, the
// agent dispatches on and the CLI builds. Pure, so it can be fuzzed.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/config/setting_values.hpp"  // LogLevel
#include "agent/lazy/peer_status.hpp"
#include "agent/wg/key.hpp"

namespace nb {

// The requests (the wire format is in protocol.hpp).
struct StatusRequest {
    bool detail = false;  // the peers, not only the counts (implied by a filter)
    PeerFilter filter;    // which peers; all when empty
};
// Which trace events a client wants; all when empty. Matched on the wire form
// (agent/control/trace_filter.hpp), by the agent for kept events and by the CLI for live.
struct TraceFilter {
    std::string key_prefix;           // the start of the peer's base64 key
    std::optional<IpAddr> ip;         // the peer that routes it (the agent names its key)
    std::vector<std::string> events;  // trigger, drop, transition, overrun, mode
    bool failures = false;            // drops, and transitions that carry an error
};
// `nbagent trace`: live events from now on; with `last` or `since_ms` first the kept ones
// (the in-agent ring), and then live ones only with `follow`.
struct TraceRequest {
    TraceFilter filter;
    std::optional<uint64_t> last;     // the last N kept events that match
    std::optional<int64_t> since_ms;  // the kept events since this unix time (ms)
    bool follow = true;
};
inline constexpr const char* kTraceEventNames[] = {"trigger", "drop", "transition", "overrun",
                                                   "mode"};
struct PeerIdleRequest {
    WgKey public_key;
};
// A new network map: exactly one of a path the agent reads itself (absolute) or the text
// a client read, with the file it came from (re-read on SIGHUP) and a name for errors.
struct ApplyRequest {
    std::optional<std::string> config_path;
    std::optional<std::string> config_text;
    std::optional<std::string> file;    // with config_text only
    std::optional<std::string> source;  // with config_text: "source:line: problem"
    bool dry_run = false;
};
struct SetLazyRequest {
    bool lazy = true;
};
// `nbagent debug bundle`, in steps so that the event loop never waits for a profile or a
// file: start (a directory for this bundle, and a CPU profile when asked), collect (the
// agent's files, written off the loop), poll (until they are written).
struct DebugRequest {
    enum class Step { Start, Collect, Poll };
    Step step = Step::Start;
    uint64_t profile_ms = 0;  // start: a CPU profile this long; 0: none
    std::string dir;          // collect, poll: the directory start answered
};
// `nbagent peer wake`: connect these peers now (or every member of a group), as if
// traffic had arrived. Exactly one of the two.
struct PeerWakeRequest {
    std::vector<WgKey> public_keys;
    std::optional<std::string> group;
};
// `nbagent set log-level|inactivity-threshold`: takes effect at once. At least one.
struct SetRequest {
    std::optional<LogLevel> log_level;
    std::optional<std::chrono::milliseconds> inactivity_threshold;  // at least 10 s
};

using ControlRequest = std::variant<StatusRequest, TraceRequest, PeerIdleRequest, ApplyRequest,
                                    SetLazyRequest, DebugRequest, PeerWakeRequest, SetRequest>;

// A request line, checked and typed once (by the server, before any handler sees it).
struct ParsedRequest {
    std::optional<ControlRequest> request;  // when error is empty
    std::string error;                      // what is wrong with the line, printable, for the reply
};

ParsedRequest parse_request(std::string_view line);

// The request an object with a string "cmd" describes; throws std::invalid_argument
// naming the command or field that is unknown, missing or wrong.
ControlRequest request_from_json(const nlohmann::json& req);
nlohmann::json to_json(const ControlRequest& r);

// A request's "cmd".
std::string_view command_name(const ControlRequest& r);

// Only an apply request carries a network map, so only its line may be long. Whether a
// line begins {"cmd":"apply" (JSON whitespace allowed) is judged from its first bytes
// only: the rest may not have arrived yet.
bool may_be_long(const ControlRequest& r);
bool starts_as_apply(std::string_view line);

}  // namespace nb
