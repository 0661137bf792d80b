// The `nbagent` command line: one add_*_command/run_* pair per subcommand. Everything
// except calling the agent lives in the nb_cli library so tests can drive it; main.cpp
// only passes nb::run_agent in.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent/config/setting_values.hpp"
#include "agent/config/wg_quick.hpp"
#include "agent/control/protocol.hpp"
#include "agent/engine/engine.hpp"
#include "base/time.hpp"

namespace nb::cli {

// A problem with how nbagent was invoked that CLI11 cannot see (e.g. a bad environment
// variable): reported like an argument error, exit code 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using nb::parse_duration;  // base/time.hpp
using nb::parse_switch;    // agent/config/setting_values.hpp

using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup process_env();
// --lazy-conn wins; else NB_LAZY_CONN; else NB_ENABLE_EXPERIMENTAL_LAZY_CONN; else on.
// The first of these that is set decides; a bad value there throws UsageError. An
// empty variable counts as unset.
bool resolve_lazy(const std::optional<std::string>& flag, const EnvLookup& env);

// The lazy-connection inactivity threshold: a duration as parse_duration takes it, except
// that a bare number is minutes (NetBird's NB_LAZY_CONN_INACTIVITY_THRESHOLD convention).
// Throws UsageError naming the text when it is malformed or below kMinInactivityThreshold:
// WireGuard's own timers are 5 s (rekey) and 10 s (keepalive), so a shorter threshold
// only makes peers flap between request and reply.
using nb::kMinInactivityThreshold;  // agent/config/wg_quick.hpp
std::chrono::milliseconds parse_inactivity_threshold(std::string_view text);
// --inactivity-threshold wins; else NB_LAZY_CONN_INACTIVITY_THRESHOLD (empty counts as
// unset; a bad value throws UsageError naming the variable); else 15m.
std::chrono::milliseconds resolve_inactivity_threshold(const std::optional<std::string>& flag,
                                                       const EnvLookup& env);

// -i/--interface and --run-dir, which every client command takes to find the agent's
// control socket (ControlClient::find_socket).
inline void add_socket_options(CLI::App& cmd, std::optional<std::string>& interface,
                               std::string& run_dir) {
    cmd.add_option("-i,--interface", interface, "Interface (needed if several agents run)");
    cmd.add_option("--run-dir", run_dir, "Directory of the control socket")->capture_default_str();
}

// `GROUP NAME`: a command group that does nothing by itself (so a subcommand is required)
// and its subcommand NAME, which is returned.
inline CLI::App* add_grouped_command(CLI::App& app, const std::string& group,
                                     const std::string& group_help, const std::string& name,
                                     const std::string& help) {
    CLI::App* g = app.add_subcommand(group, group_help);
    g->require_subcommand(1);
    return g->add_subcommand(name, help);
}

// A validator that runs `check` on the text: what it throws (an E) is the message.
template <typename E, typename Check>
inline CLI::Validator throwing_validator(Check check, std::string name) {
    return CLI::Validator(
        [check](std::string& text) -> std::string {
            try {
                check(text);
            } catch (const E& e) {
                return e.what();
            }
            return {};
        },
        std::move(name));
}

// Value checks (validators.cpp): a positive duration ("10s"), an inactivity threshold
// (parse_inactivity_threshold), a switch (kSwitchNames, in any case), an IP address, and
// a listen address ("127.0.0.1:9590").
CLI::Validator duration_validator();
CLI::Validator inactivity_validator();
CLI::Validator switch_validator();
CLI::Validator ip_validator();
CLI::Validator listen_validator();

// A validator that takes exactly the names of E's table: `expected one of a, b or c,
// got "x"` otherwise, which CLI11 prefixes with the option (and the settings file with
// PATH:LINE). --help shows the names as TEXT:{a,b,c}, in the table's order.
template <NamedEnum E>
CLI::Validator enum_validator() {
    std::string shown = "{";
    for (const auto& n : enum_names(E{})) shown.append(shown.size() > 1 ? "," : "").append(n.name);
    return CLI::Validator(
        [](std::string& text) -> std::string {
            return parse_enum<E>(text) ? std::string() : expected_one_of(enum_names(E{}), text);
        },
        shown + "}");
}
// The enum `text` names, checked by enum_validator before: one that is not a name
// (a caller that skipped the check) throws UsageError naming `option` and the names.
template <NamedEnum E>
E parse_option(const char* option, const std::string& text) {
    if (auto v = parse_enum<E>(text)) return *v;
    throw UsageError(std::string(option) + ": " + expected_one_of(enum_names(E{}), text));
}

// A required positional argument checked while argv is parsed, so a bad one is a usage
// error: `problem` says what is wrong with the text, or returns "" if nothing is.
// `shown_as` stands for the value in --help.
inline CLI::Option* add_checked_argument(CLI::App& cmd, const std::string& name, std::string& value,
                                         const std::string& help,
                                         std::function<std::string(const std::string&)> problem,
                                         const std::string& shown_as) {
    return cmd.add_option(name, value, help)
        ->required()
        ->check(CLI::Validator(
            [problem = std::move(problem)](std::string& text) { return problem(text); }, shown_as));
}

// `run`'s options as typed, each default taken from RunOptions' (run_defaults()), so the
// two cannot drift. The names of enums and switches are checked against their tables
// while argv (or the settings file) is parsed; to_run_options parses them once.
struct RunArgs {
    std::string interface;
    std::optional<std::string> config;
    std::string wg = to_string(run_defaults().wg_mode);
    std::optional<std::string> lazy_conn;
    uint32_t max_held_packets = run_defaults().max_held_packets;
    std::string connect_timeout = format_duration(run_defaults().connect_timeout);
    std::string connect_backoff = format_duration(run_defaults().connect_backoff);
    uint32_t wake_rate = run_defaults().wake_rate;
    std::optional<std::string> inactivity_threshold;
    uint32_t max_peers = run_defaults().max_peers;  // 0: auto
    uint32_t ring_buffer_kib = run_defaults().ring_buffer_bytes / 1024;
    std::string udp_forward_handshake = switch_name(run_defaults().udp_forward_handshake);
    std::string exec_timeout = format_duration(run_defaults().exec_timeout);
    std::string wg_timeout = format_duration(run_defaults().wg_timeout);
    std::string run_dir = default_run_dir();
    std::string attach = to_string(run_defaults().attach_mode);
    std::string trigger = to_string(run_defaults().trigger);
    std::string log_level = to_string(run_defaults().log_level);
    uint32_t trace_ring = run_defaults().trace_ring;
    uint32_t log_ring = run_defaults().log_ring;
    std::optional<std::string> metrics_listen;
    // The fleet on etcd (cli/run_fleet_options.cpp).
    std::vector<std::string> etcd_endpoints;
    std::string etcd_ca, etcd_cert, etcd_key;
    std::string mesh = run_defaults().fleet.mesh;
    std::string map = to_string(run_defaults().fleet.map);
    std::vector<std::string> advertise;
    std::string lease_ttl = format_duration(run_defaults().fleet.lease_ttl);
    std::vector<std::string> node_groups;
    std::string node_lazy = switch_name(run_defaults().fleet.lazy);
    std::optional<std::string> settings;  // --settings; unset: the default path if it exists
    bool print_settings = false;          // print each option and its source, then exit
};
CLI::App* add_run_command(CLI::App& app, RunArgs& args);
// run's fleet options (--etcd-*, --mesh, --map, --advertise, ...) and their mapping.
void add_fleet_options(CLI::App& run, RunArgs& args);
FleetOptions to_fleet_options(const RunArgs& args);
RunOptions to_run_options(const RunArgs& args, const EnvLookup& env);
// Each option of `run` as it took effect and where it came from (flag, env NAME, file
// PATH:LINE, default), for debug bundles. `from_file`: apply_settings_file's answer.
std::vector<Setting> effective_settings(const CLI::App& run, const RunOptions& opts,
                                        const EnvLookup& env,
                                        const std::map<std::string, std::string>& from_file);
// `run --print-settings`: each option, its value and where it came from, aligned.
void print_settings(const std::vector<Setting>& settings, std::ostream& out);
// "env NAME" when an environment variable gives `option` ("--lazy-conn").
std::optional<std::string> env_source(const std::string& option, const EnvLookup& env);
// The settings file to read (--settings, or the default path) and the live settings as
// flags, env and defaults give them, before the file fills in: what SIGHUP starts from.
SettingsReload reload_sources(const CLI::App& run, const RunArgs& a, const EnvLookup& env);
// Fills the options no flag or env gave from the settings file, through their own
// validators; returns each option it set with "file PATH:LINE". Throws UsageError with
// PATH:LINE on an unknown key or a bad value.
std::map<std::string, std::string> apply_settings_file(CLI::App& run, const SettingsReload& reload,
                                                       const EnvLookup& env);

struct StatusArgs {
    std::optional<std::string> interface;
    bool detail = false;
    // Filters (each implies --detail): the agent selects the peers.
    std::optional<std::string> state;  // idle|connecting|connected, any case
    std::optional<std::string> peer;   // a public key or its start
    std::optional<std::string> ip;     // the peer whose allowed IPs route it
    bool failing = false;
    bool json = false;
    std::string run_dir = default_run_dir();
};
CLI::App* add_status_command(CLI::App& app, StatusArgs& args);
int run_status(const StatusArgs& args, std::ostream& out);
// The status object of a status reply line, as it stands in it, when the line is the
// envelope the agent writes ({"ok":true,"status":{...}}): valid JSON to forward without
// parsing it (350 ms at 100k peers). None for any other line.
std::optional<std::string_view> verbatim_status(std::string_view line);
// "never", "12s ago", "3m ago", "5h ago", "2d ago"; times in unix ms.
std::string format_relative(int64_t then_ms, int64_t now_ms);
std::string format_bytes(uint64_t n);
void write_status_summary(const AgentStatus& s, std::string& out);
void write_peer_table(const AgentStatus& s, int64_t now_ms, std::string& out);

// trace -o, as `hubble observe` has it: one line an event, or a JSON object a line.
enum class TraceOutput { Compact, Json };
inline constexpr EnumName<TraceOutput> kTraceOutputNames[] = {
    {TraceOutput::Compact, "compact"},
    {TraceOutput::Json, "json"},
};
constexpr const auto& enum_names(TraceOutput) {
    return kTraceOutputNames;
}

struct TraceArgs {
    std::optional<std::string> interface;
    bool json = false;  // --json: the same as -o json
    std::string output = to_string(TraceOutput::Compact);
    std::optional<uint64_t> count;
    // Filters: the peer (key or its start), the peer routing an address, event kinds
    // (trigger, drop, state or transition, overrun, mode), failures only.
    std::optional<std::string> peer, ip;
    std::vector<std::string> events;
    bool failures = false;
    // The kept events first: the last N that match, or those of the last DURATION; then
    // exit, unless --follow.
    std::optional<uint64_t> last;
    std::optional<std::string> since;
    bool follow = false;
    std::string run_dir = default_run_dir();
};
// Adds `trace` with its `peers` subcommand; returns `trace peers`.
CLI::App* add_trace_command(CLI::App& app, TraceArgs& args);
int run_trace(const TraceArgs& args, std::ostream& out);
// One human-readable line (no newline) for an event object from the agent.
std::string format_trace_event(const nlohmann::json& event);

struct PeerArgs {
    std::string public_key;              // peer idle
    std::vector<std::string> wake_keys;  // peer wake KEY...
    std::optional<std::string> group;    // peer wake --all-in-group NAME
    std::optional<std::string> interface;
    std::string run_dir = default_run_dir();
};
// `peer idle KEY` and `peer wake KEY... | --all-in-group NAME`.
struct PeerCommands {
    CLI::App* idle = nullptr;
    CLI::App* wake = nullptr;
};
PeerCommands add_peer_command(CLI::App& app, PeerArgs& args);
int run_peer_idle(const PeerArgs& args, std::ostream& out);
int run_peer_wake(const PeerArgs& args, std::ostream& out);

// `nbagent apply -c FILE`: hands a new network map to the running agent, which applies
// only the difference.
struct ApplyArgs {
    std::string config;
    bool dry_run = false;
    std::optional<std::string> interface;
    std::string run_dir = default_run_dir();
    bool json = false;
};
CLI::App* add_apply_command(CLI::App& app, ApplyArgs& args);
int run_apply(const ApplyArgs& args, std::ostream& out);
// "applied: 3 added, 1 removed, 2 changed, 994 unchanged (12.3 ms)" (no newline) for an
// apply reply, "dry run: would apply ..." when it was not applied on a dry run; throws
// std::runtime_error if the reply lacks a field.
std::string format_apply_reply(const nlohmann::json& reply, bool dry_run);

// `nbagent set lazy|log-level|inactivity-threshold VALUE`: changes a setting of the
// running agent, at once.
struct SetArgs {
    std::string value;  // as typed; each subcommand checks it while argv is parsed
    std::optional<std::string> interface;
    std::string run_dir = default_run_dir();
};
struct SetCommands {
    CLI::App* lazy = nullptr;
    CLI::App* log_level = nullptr;
    CLI::App* inactivity = nullptr;
};
SetCommands add_set_command(CLI::App& app, SetArgs& args);
int run_set_lazy(const SetArgs& args, std::ostream& out);
int run_set(const SetArgs& args, const SetCommands& which, std::ostream& out);

// `nbagent features`: what the kernel and the machine offer, probed here and now (no
// agent needed), and what `auto` would pick.
struct FeaturesArgs {
    bool json = false;
};
CLI::App* add_features_command(CLI::App& app, FeaturesArgs& args);
nlohmann::json probe_features_json();
int run_features(const FeaturesArgs& args, std::ostream& out);

// `nbagent version`: this binary's version and build, and the libbpf and kernel it runs
// on (`nbagent --version` prints only "nbagent VERSION").
struct VersionArgs {
    bool json = false;
};
CLI::App* add_version_command(CLI::App& app, VersionArgs& args);
// {"version", "build_type", "compiler", "libbpf", "kernel"}, all strings; also the debug
// bundle's `version` file.
nlohmann::json version_json();
int run_version(const VersionArgs& args, std::ostream& out);
// `nbagent debug bundle`: the running agent's state, logs, WireGuard, BPF and profiles
// in one tar.gz (cmd_debug.cpp).
struct DebugArgs {
    std::optional<std::string> interface;
    std::optional<std::string> output;
    bool anonymize = false;
    std::string profile_duration = "30s";
    bool no_profiles = false;
    std::string run_dir = default_run_dir();
};
CLI::App* add_debug_command(CLI::App& app, DebugArgs& args);
int run_debug_bundle(const DebugArgs& args, std::ostream& out);

// The whole CLI: parses argv and runs the chosen command; returns the exit code
// (0 ok, 1 runtime/control error, 2 usage error). `run_agent` starts the agent.
int run_cli(int argc, const char* const* argv,
            const std::function<int(const RunOptions&)>& run_agent, const EnvLookup& env);

}  // namespace nb::cli
