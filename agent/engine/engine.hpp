// The agent: owns WireGuard control, the datapath, the lazy manager and the control
// socket, and runs them on one event loop until SIGTERM/SIGINT.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/activity/trigger_mode.hpp"
#include "agent/config/setting_values.hpp"
#include "agent/lazy/lazy_defaults.hpp"
#include "agent/metrics/metrics_server.hpp"
#include "agent/wg/wg_backend.hpp"
#include "loader/tc_attach.hpp"

namespace nb {

class WgControl;

// The BPF ring buffer's default size (NB_DEFAULT_RINGBUF_BYTES; trigger_choice.cpp checks they
// agree), here so that the CLI's options need no BPF header.
inline constexpr uint32_t kDefaultRingBufferBytes = 8u << 20;

// One setting of the run as it took effect, and where it came from ("flag", "env NAME",
// "default"): for debug bundles.
struct Setting {
    std::string name, value, source;
};

// What SIGHUP sets again besides the network map: the settings a running agent can
// change (as `nbagent set` does), from the same sources in the same order as at the
// start: flag > env > settings file > default.
struct LiveSettings {
    LogLevel log_level = LogLevel::Info;
    std::chrono::milliseconds inactivity_threshold = kDefaultInactivityThreshold;
    bool lazy = true;
};
struct SettingsReload {
    // The settings file SIGHUP reads again. `required`: named by --settings, so a missing
    // file is an error; otherwise the default path, read when it exists.
    std::optional<std::string> path;
    bool required = false;
    // Each live setting as a flag or env gave it, or its default: what applies when the
    // file does not set it. A flag or env fixes it: the file cannot change it then.
    LiveSettings base;
    bool log_level_fixed = false, inactivity_fixed = false, lazy_fixed = false;
};

// Where the peers come from: the wg-quick file alone, or with every node of the mesh.
enum class MapSource { File, Etcd };
inline constexpr EnumName<MapSource> kMapSourceNames[] = {{MapSource::File, "file"},
                                                          {MapSource::Etcd, "etcd"}};
constexpr const auto& enum_names(MapSource) {
    return kMapSourceNames;
}

// A fleet on etcd (agent/fleet, docs/fleet.md): this node registered under its mesh,
// the others' endpoints for `Connector = etcd`, and with `map_from_store` the peers too.
struct FleetOptions {
    std::vector<std::string> etcd_endpoints;   // none: no store
    std::string etcd_ca, etcd_cert, etcd_key;  // TLS: files, or empty
    std::string mesh = "default";
    MapSource map = MapSource::File;  // etcd: every node of the mesh is a peer too
    // "host:port" the others dial; empty: the host's addresses with the listen port.
    std::vector<std::string> advertise;
    std::chrono::seconds lease_ttl{10};
    std::vector<std::string> groups;  // how the others group this node
    bool lazy = true;                 // false: the others keep this node connected
    bool enabled() const { return !etcd_endpoints.empty(); }
};

// The options of a run, their defaults written here once: `run`'s flags (cli RunArgs)
// show and start from them, and the lazy manager's share comes from agent/lazy's.
struct RunOptions {
    std::string interface;
    std::optional<std::string> config_path;  // absent: adopt the configured interface
    WgMode wg_mode = WgMode::Auto;
    bool lazy = true;
    uint32_t max_held_packets = kDefaultMaxHeld;
    // Wake to completed handshake; beyond it the peer goes back to Idle (with backoff).
    std::chrono::milliseconds connect_timeout = kDefaultConnectTimeout;
    // After the n-th failed wake in a row, no new wake for this * 2^(n-1) (at most 5 min).
    std::chrono::milliseconds connect_backoff = kDefaultConnectBackoff;
    // Wakes per second of peers without a proven handshake (LazyOptions::wake_rate).
    uint32_t wake_rate = 500;
    // A Connected peer with no traffic for this long goes back to Idle (lazy mode only).
    std::chrono::milliseconds inactivity_threshold = kDefaultInactivityThreshold;
    // Datapath capacity (peers, and allowed IPs of each kind); 0: sized from the first
    // map with headroom. Later maps (apply, SIGHUP) must fit it.
    uint32_t max_peers = 0;
    uint32_t ring_buffer_bytes = kDefaultRingBufferBytes;
    bool udp_forward_handshake = true;  // see UdpTrigger::Options::forward_initiation
    std::chrono::milliseconds exec_timeout = kDefaultExecTimeout;
    // wireguard-go: how long the event loop waits for an answer before WireGuard counts as
    // not answering (its requests then fail at once until a probe sees it answer again).
    std::chrono::milliseconds wg_timeout{500};
    std::string run_dir = "/run/nbagent";  // kDefaultRunDir; the CLI gives default_run_dir()
    AttachMode attach_mode = AttachMode::Auto;
    TriggerMode trigger = TriggerMode::Auto;
    LogLevel log_level = LogLevel::Info;
    // Kept for debug bundles: the last trace events (about 150 bytes each) and log lines.
    uint32_t trace_ring = 100000;
    uint32_t log_ring = 10000;
    // Prometheus metrics at http://ADDR:PORT/metrics (agent/metrics/); none when unset.
    std::optional<ListenAddress> metrics_listen;
    FleetOptions fleet;
    std::vector<std::string> command_line;
    std::vector<Setting> settings;  // every option of `run`, as it took effect
    SettingsReload reload;
    // Benchmarks only (bench/status_standin): WireGuard control for an existing
    // interface, where no WireGuard here can hold the peers (wireguard-go stops at
    // 65,536). Unset: the interface's own kernel WireGuard or wireguard-go.
    std::function<std::unique_ptr<WgControl>(const std::string& interface)> wg_standin;
};

// RunOptions as nothing set them: what `run`'s flags start from.
inline const RunOptions& run_defaults() {
    static const RunOptions defaults;
    return defaults;
}

// Returns the process exit code.
int run_agent(const RunOptions& opts);

// Sets spdlog's level (the LogLevel names spdlog's levels in its order).
void set_log_level(LogLevel level);

// Makes the default logger the agent's: every line to stderr, stamped in UTC RFC 3339
// ("2026-12-04T12:00:00.123Z [info] ..."). run_agent calls it first, at the level set.
void log_like_an_agent();

// Blocks, in the calling thread, the signals the agent reads from its signalfd (SIGTERM,
// SIGINT, SIGHUP) and returns them. run_agent does it itself; a program that runs the
// agent in a thread of its own calls it first in every other thread.
sigset_t block_agent_signals();

}  // namespace nb
