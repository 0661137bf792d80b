// The engine's own parts, shared by its files (not for the rest of the tree): the
// running Agent, which wires the folders together around one event loop, and the helpers
// it is built from. agent/engine/engine.hpp is what the CLI sees.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <nlohmann/json.hpp>

#include "agent/activity/bpf_activity.hpp"
#include "agent/activity/bpf_ports.hpp"
#include "agent/activity/order_watch.hpp"
#include "agent/activity/packet_injector.hpp"
#include "agent/activity/udp_trigger.hpp"
#include "agent/config/wg_quick.hpp"
#include "agent/connector/connect_pool.hpp"
#include "agent/control/control_server.hpp"
#include "agent/control/protocol.hpp"
#include "agent/control/request.hpp"
#include "agent/debug/cpu_profile.hpp"
#include "agent/engine/engine.hpp"
#include "agent/engine/fd_table.hpp"
#include "agent/engine/instance_lock.hpp"
#include "agent/engine/service_notify.hpp"
#include "agent/fleet/fleet_sync.hpp"
#include "agent/fleet/registration.hpp"
#include "agent/lazy/lazy_manager.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/lazy/trace_ring.hpp"
#include "agent/metrics/metrics_server.hpp"
#include "agent/wg/device_reader.hpp"
#include "agent/wg/wg_health.hpp"
#include "base/unique_fd.hpp"
#include "loader/datapath.hpp"

namespace nb::engine {

// ---- the real implementations of the manager's ports ----

class PoolQueue : public ConnectQueue {
  public:
    explicit PoolQueue(ConnectPool& pool) : pool_(pool) {}
    void submit(ConnectPool::Job job) override { pool_.submit(std::move(job)); }

  private:
    ConnectPool& pool_;
};

// ---- interface set-up (interface_setup.cpp) ----

// Peers as the config describes them, taken out of it: a million peers' config is not
// kept twice.
std::vector<PeerSpec> specs_from_config(WgQuickConfig&& cfg);

// Peers as WireGuard has them now (adopting an interface someone else configured).
std::vector<PeerSpec> specs_from_device(const WgDevice& dev);

// wireguard-go behind a health check (agent/wg/wg_health.hpp); one the agent started
// itself it starts again when it dies.
std::unique_ptr<WgControl> userspace_control(const RunOptions& opts, bool started_here);

// The interface settings of an adopted interface, to put back on a new device.
InterfaceConfig interface_as_it_is(const std::string& name, const WgDevice& dev);

// Makes sure the interface exists and returns its control backend; sets `created`
// when this run made it (so a failed start can remove it again).
std::unique_ptr<WgControl> open_interface(const RunOptions& opts, bool can_create, bool& created);

void apply_interface_config(const RunOptions& opts, const InterfaceConfig& iface,
                            const std::vector<IpPrefix>& routes);

// The device settings of `want` that `have` does not have yet (all of them without
// `have`): a setting WireGuard has is not written again (wireguard-go rebinds its socket
// for any listen_port, dropping what arrives meanwhile).
DeviceUpdate changed_settings(const InterfaceConfig& want, const InterfaceConfig* have);

// A new config's addresses and MTU on the interface, where they differ from `old`'s.
// An address no longer in the config stays on the interface (with a warning).
void add_new_addresses(const std::string& name, const InterfaceConfig* old,
                       const InterfaceConfig& now);
void set_changed_mtu(const std::string& name, const InterfaceConfig* old,
                     const InterfaceConfig& now);

uint32_t capacity_for(size_t n);

// Every prefix routed through the interface for a config, sorted. Default routes are
// left out: wg-quick sends them through policy routing and a fwmark, and nbagent does
// not take over the host's default route.
std::vector<IpPrefix> routed_prefixes(std::vector<IpPrefix> all, bool warn_default,
                                      const std::string& name);

std::vector<IpPrefix> allowed_ips_of(const WgQuickConfig& cfg);

// The agent's log line format (logging.cpp): UTC RFC 3339, for every sink of it.
std::unique_ptr<spdlog::formatter> agent_log_formatter();

// A debug bundle being taken (debug_requests.cpp); one at a time.
struct DebugSession {
    std::string dir;
    uint64_t profile_until_ns = 0;  // the CPU profile (when one runs) stops then
    // Past this (the profile's end and two minutes), a new start takes over: the CLI of
    // this one was killed between its steps.
    uint64_t abandoned_after_ns = 0;
    std::string profile;  // "running", or why there is none
    std::thread writer;   // writes the agent's files, off the loop (collect)
    std::atomic<bool> written{false};
    std::string error;               // the writer's; read once `written`
    std::vector<std::string> files;  // what it wrote; read once `written`
    ~DebugSession() {
        if (writer.joinable()) writer.join();
    }
};

// The running agent: everything run_agent sets up, and what the event loop calls.
class Agent {
  public:
    explicit Agent(const RunOptions& opts)
        : opts_(opts),
          state_path_(state_file_path(opts.run_dir, opts.interface)),
          trace_ring_(opts.trace_ring) {}
    ~Agent();

    // Returns false (after logging why) when the agent could not start; nothing it
    // made is left behind.
    bool start(std::optional<WgQuickConfig> cfg, const sigset_t& mask);
    int loop();
    void shutdown(int& exit_code);

  private:
    // A control request, dispatched on its type (agent/control/request.hpp).
    ControlReply handle(const ControlRequest& req, ControlServer::ClientId client);
    ControlReply status_reply(const StatusRequest& req);
    // What a scrape of /metrics shows (metrics.cpp): O(1) in the number of peers.
    MetricsSnapshot metrics_snapshot() const;
    // debug_requests.cpp: the steps of a debug bundle, and the profile's end on the tick.
    nlohmann::json debug_request(const DebugRequest& r);
    nlohmann::json debug_start(const DebugRequest& r);
    nlohmann::json debug_collect(const DebugRequest& r);
    nlohmann::json debug_poll(const DebugRequest& r);
    void debug_tick(uint64_t now_ns);
    DebugSession& debug_session(const std::string& dir);
    // debug_state.cpp: what the loop hands the writer, and the CPU profile ("running",
    // or why not).
    nlohmann::json debug_settings() const;
    // Host names, connector commands and group names: what --anonymize must hide.
    nlohmann::json debug_names() const;
    std::string debug_bpf_text() const;
    std::string debug_latency_text() const;
    std::string debug_resources_text() const;
    std::string start_cpu_profile(const std::string& path);
    void stop_cpu_profile();
    void keep_log_lines();
    void drop_log_ring();
    void record_trace(const TraceEvent& ev);
    nlohmann::json apply_request(const ApplyRequest& r);
    nlohmann::json peer_wake(const PeerWakeRequest& r);
    // The reply to a trace request: the key of the peer its address names, and the kept
    // events it asks for (control_requests.cpp).
    nlohmann::json trace_reply(const TraceRequest& r);
    nlohmann::json set_request(const SetRequest& r);
    nlohmann::json apply_config(WgQuickConfig cfg, bool dry_run);
    // Steps of apply_config: the UDP engine's hold on a new ListenPort, the state file
    // before (both maps' endpoints) and after (the new map's).
    void claim_listen_port(const DeviceUpdate& update, bool dry_run);
    void store_both_maps(const std::vector<PeerSpec>& specs);
    void trim_state_file();
    void reload();           // SIGHUP: the settings, then the network map
    void reload_settings();  // agent/engine/live_settings.cpp
    void reload_map();
    void set_lazy(bool lazy);
    void load_datapath(const std::vector<PeerSpec>& specs);
    void attach_datapath(int ifindex);
    // The trigger engine in two steps: before the interface is touched (the programs
    // load, or auto settles on UDP), and once it exists (attach, or the listeners).
    void prepare_trigger(const std::vector<PeerSpec>& specs);
    void activate_trigger(int ifindex, size_t peers);
    void fall_back_to_udp(const std::string& why);
    void drop_trigger();
    HoldDatapath* hold_port() const;
    void watch_activity();
    void tell_udp_wireguard_source();
    // Steps of start: the WireGuard backend, the device as it is (when this run did
    // not make it), undoing a failed start, and the event loop's own fds.
    void open_wireguard(const InterfaceConfig* iface);
    // What refuses a start before anything is touched: the instance lock, the control
    // socket, the metrics port; then the store (the first map may need the mesh).
    void claim_resources();
    std::optional<WgDevice> read_device();
    std::vector<PeerSpec> adopt_device(const WgDevice& dev);
    void start_device_reader();
    void log_started() const;
    void undo_start();
    bool open_event_loop(const sigset_t& mask);
    // Events of the loop's fds (FdTable callbacks); `fd` watched once the loop exists.
    void watch(int fd, FdTable::Callback cb);
    void on_signals();
    void on_tick();
    void widen_tun_queue(size_t peers);
    void arm_tick();
    // WireGuard lost or answering again (WgHealth's events).
    void on_wg_events();
    void wg_lost(const std::string& reason);
    void wg_answering(const WgHealthEvent& ev);

    RunOptions opts_;
    std::string state_path_;
    // Of the map last applied from a config (if any): what the next one is compared to.
    // Not the whole config: the peers live in the manager.
    std::optional<InterfaceConfig> iface_;
    // Whether the routes through the interface are ours (from a config): then they follow
    // the peers' allowed IPs. Adopted without a config, they are the operator's.
    // Makes the routes via the interface match `want` (sorted): adds what is missing if
    // `add`, and deletes what nbagent made (kNbRouteProtocol) or what routed a prefix of
    // `old_map` (a peer just removed, e.g. a wg-quick route of an adopted interface) that
    // is no longer wanted. Failures are logged: the map is applied either way.
    // Writes the state file, or throws naming it and `consequence` (what is refused).
    void store_endpoints(const std::vector<PeerSpec>& specs, const std::string& consequence);
    void sync_routes(const std::vector<IpPrefix>& old_map, const std::vector<IpPrefix>& want,
                     bool add);
    std::optional<std::string> cfg_path_;  // what SIGHUP re-reads
    bool created_ = false;
    std::unique_ptr<WgControl> wg_;
    WgHealth* health_ = nullptr;            // wg_ when it is wireguard-go
    std::unique_ptr<DeviceReader> reader_;  // kernel WireGuard: handshake polls off the loop
    bool wg_lost_ = false;           // peers made Idle, programs detached: re-adopt when back
    InterfaceConfig adopted_iface_;  // without a config: the interface as adopted
    std::unique_ptr<Datapath> dp_;
    std::unique_ptr<OrderWatch> order_;  // reads dp_: declared after it, destroyed first
    std::unique_ptr<BpfHold> hold_;
    std::unique_ptr<InjectorSink> sink_;
    std::unique_ptr<ConnectPool> pool_;
    std::unique_ptr<PoolQueue> queue_;
    std::unique_ptr<LazyManager> mgr_;
    std::unique_ptr<BpfActivitySource> activity_;
    std::unique_ptr<UdpTrigger> udp_;
    bool want_udp_ = false;              // the UDP engine was chosen (forced, or auto fell back)
    std::optional<InstanceLock> lock_;   // held from the start to the end
    ServiceNotifier notifier_;           // systemd's Type=notify
    std::string service_status() const;  // "N peers: a Idle, b Connecting, c Connected"
    std::unique_ptr<ControlServer> server_;
    AgentStatus base_status_;
    std::unique_ptr<FdTable> fds_;  // the event loop: every fd it watches, and their callbacks
    UniqueFd sfd_, tfd_;
    bool running_ = true;  // until a signal asks to stop
    std::chrono::milliseconds tick_armed_{0};
    int ifindex_ = 0;
    TraceRing trace_ring_;
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log_ring_;
    std::unique_ptr<DebugSession> debug_;
    debug::CpuProfiler cpu_profiler_;
    std::unique_ptr<MetricsServer> metrics_;
    MapUpdateCounters maps_;

    // The fleet (fleet_link.cpp): the store's client, the directory wakes read, the sync
    // that keeps it, and this node's registration. Their threads leave what changed in
    // fleet_pending_ and wake the loop through fleet_efd_.
    struct FleetPending {
        std::mutex mu;
        bool map = false;
        std::vector<WgKey> moved;
        std::vector<std::string> notes;  // store up/down, refused records, registration
        std::optional<StoreState> state;
    };
    void start_fleet();
    // With --map etcd: the file's peers and every other node of the mesh (a node the
    // file has already is left to the file).
    WgQuickConfig with_fleet_peers(WgQuickConfig cfg) const;
    void start_registration(const InterfaceConfig& iface);
    void on_fleet_events();
    void stop_fleet();
    void fleet_wake_loop();
    std::unique_ptr<EtcdClient> etcd_;
    std::shared_ptr<NodeDirectory> fleet_dir_;
    std::unique_ptr<FleetSync> fleet_sync_;
    std::unique_ptr<Registration> registration_;
    UniqueFd fleet_efd_;
    FleetPending fleet_pending_;
    StoreState store_state_ = StoreState::Connecting;
    std::optional<WgKey> self_key_;  // this node's public key, left out of its own map
    std::mutex self_mu_;             // the record the registration publishes
    NodeRecord self_;
    double start_time_s_ = 0;  // unix time
    // The device's public key (base64) for the private key it was derived from.
    std::optional<std::pair<WgKey, std::string>> public_key_;
};

}  // namespace nb::engine
