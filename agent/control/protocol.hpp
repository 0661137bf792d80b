// Control-socket protocol between the running agent and the CLI.
//
// A UNIX stream socket at <run_dir>/<interface>.sock (run_dir defaults to /run/nbagent),
// root-only. Each request is one JSON object on one line; each reply is one JSON line:
//   {"cmd":"status","detail":true}        -> {"ok":true,"status":{...}}
//   {"cmd":"trace"}                       -> {"ok":true} then one event object per line
//   {"cmd":"peer_idle","public_key":"..."}-> {"ok":true} (forces a peer back to Idle)
//   {"cmd":"apply","config_path":"/abs/wg0.conf"[,"dry_run":true]}
//   {"cmd":"apply","config_text":"[Interface]...","source":"name"[,"dry_run":true]}
//                                         -> {"ok":true,"applied":true|false,
//                                             "diff":{"added":N,"removed":N,"changed":N,
//                                                     "unchanged":N},"ms":T}
//      (a new network map in wg-quick syntax; only the difference is applied; config
//       errors come back as "source:line: problem")
//   {"cmd":"set_lazy","lazy":true|false}  -> {"ok":true,"lazy":true|false}
// Errors: {"ok":false,"error":"what was wrong with the request"}.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/activity/trigger_mode.hpp"
#include "agent/fleet/store_state.hpp"
#include "agent/lazy/peer_status.hpp"
#include "agent/wg/wg_backend.hpp"
#include "loader/tc_attach.hpp"

namespace nb {

inline constexpr const char* kDefaultRunDir = "/run/nbagent";
// Where the control socket and the state file go without --run-dir: kDefaultRunDir, or
// kDefaultRunDir/netns/NAME in a namespace `ip netns` named, so agents on a wg0 in two
// namespaces share neither (/run is the same in both).
std::string default_run_dir();

// The wire names of the lazy states: their domain names ("Idle", "Connecting", "Connected").
inline const char* to_string(PeerState s) {
    return state_name(s);
}
std::optional<PeerState> peer_state_from_string(std::string_view s);

// A program on the WireGuard device that sees packets before ours: one that passes a
// packet ends the chain, so an idle peer's packet would reach WireGuard unheld.
struct ProgramAheadStatus {
    std::string direction;              // "ingress" | "egress"
    AttachMode hook = AttachMode::Tcx;  // tcx or clsact
    uint32_t id = 0;                    // BPF program id; 0 for a classifier that is not BPF
    std::string name;                   // the program's name (a classifier's kind when not BPF)
    uint32_t priority = 0;              // clsact: the filter's priority ("pref") and handle
    uint32_t handle = 0;
};

// Whether our programs run first on the device (checked at attach and every 5 s).
struct DatapathOrderStatus {
    bool checked = false;  // false: no tc programs, or the order could not be read (error)
    std::string error;
    std::vector<ProgramAheadStatus> ahead;  // empty and checked: first on both hooks
};

// What the agent knows of its fleet's store and what talking to it cost.
struct StoreStatus {
    StoreState state = StoreState::Connecting;
    std::string mesh;
    uint64_t nodes = 0;       // in the directory, this node included
    int64_t revision = 0;     // the store's, as far as the directory has followed it
    bool registered = false;  // this node's entry is in the store under a live lease
    uint64_t range_reads = 0, streams = 0, requests = 0;
};

struct AgentStatus {
    std::string interface;
    // The agent and the device: its version (nbagent version), when it started (RFC 3339
    // UTC) and for how long, WireGuard's public key and listen port (0: not known).
    std::string version;
    std::string started;
    int64_t uptime_s = 0;
    std::string public_key;
    uint16_t listen_port = 0;
    // On the wire by their tables' names; a name a client does not know is an error.
    WgBackend wg_backend = WgBackend::Kernel;
    std::optional<TriggerEngine> trigger;   // none ("") in eager mode
    std::optional<AttachMode> attach_mode;  // tcx or clsact; none ("") without tc programs
    std::string trigger_reason;             // why auto fell back to the UDP engine ("" if not)
    bool lazy = true;
    int64_t inactivity_threshold_ms = 0;  // Connected -> Idle after this long without traffic
    uint64_t idle = 0, connecting = 0, connected = 0;
    // Reports the BPF ring buffer could not take (the agent fell behind), and the peers
    // the agent woke or confirmed from the marks the programs left instead.
    uint64_t lost_reports = 0, lost_recovered = 0;
    // Reports the agent took from the programs (held packets, remotes talking): traffic
    // to addresses of no peer makes none, which this shows.
    uint64_t ring_reports = 0;
    // Held GSO super-packets the agent cut into segments to re-inject them, and those it
    // could not cut (re-injecting one fails, and counts as a drop).
    uint64_t gso_split = 0, gso_unsplit = 0;
    // Wakes of unproven peers waiting for admission now, those that ever had to wait,
    // and those refused because the queue was full (--wake-rate).
    uint64_t wakes_queued = 0, wakes_deferred = 0, wakes_shed = 0;
    DatapathOrderStatus datapath_order;
    // Whether WireGuard answers: "ok", "not answering" or "lost", since when (RFC 3339 UTC)
    // and what the failing request said ("" while ok); "unchecked" where the agent does
    // not watch it (kernel WireGuard), "" from an agent that does not say.
    std::string wireguard;
    std::string wireguard_since;
    std::string wireguard_error;
    // The fleet's store, when the agent has one (run --etcd-endpoints; docs/fleet.md).
    std::optional<StoreStatus> store;
    std::vector<PeerStatus> peers;  // only with detail
    bool has_peers = false;         // the reply listed peers (detail); none may have matched
};

// The reply line without peers (status without -d): {"ok":true,"status":{...}}.
std::string status_summary_text(const AgentStatus& s);
// The whole reply line (without newline) {"ok":true,"status":{...,"peers":[...]}}, the
// peers last. Written through nlohmann's serializer, but peer by peer into one string:
// a DOM of 100k peers costs more than the rest of a `status -d` round trip. Invalid
// UTF-8 in any string becomes U+FFFD. For ControlReply::raw.
std::string status_reply_text(const AgentStatus& s);
// The same with the peers taken from `next` instead of s.peers: it fills the one
// PeerStatus it is given and returns true, or returns false after the last peer. The
// object is reused, so its strings keep their capacity: no allocation per peer.
std::string status_reply_text(const AgentStatus& s, size_t peers_hint,
                              const PeerStatusSource& next);
// One peer's object as status_reply_text writes it, parsed back (to compare peers).
nlohmann::json to_json(const PeerStatus& p);
// Reads the "status" object of a reply; throws std::runtime_error naming the bad field
// (one of an enum's fields with a name not in its table too).
AgentStatus agent_status_from_json(const nlohmann::json& j);

std::string socket_path(const std::string& run_dir, const std::string& interface);

}  // namespace nb
