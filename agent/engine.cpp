#include "agent/engine.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/activity/bpf_activity.hpp"
#include "agent/activity/bpf_ports.hpp"
#include "agent/activity/order_watch.hpp"
#include "agent/activity/packet_injector.hpp"
#include "agent/activity/udp_trigger.hpp"
#include "agent/common/fault_point.hpp"
#include "agent/common/memory.hpp"
#include "agent/common/printable.hpp"
#include "agent/common/unique_fd.hpp"
#include "agent/config/wg_quick.hpp"
#include "agent/connector/connect_pool.hpp"
#include "agent/control/control_server.hpp"
#include "agent/control/protocol.hpp"
#include "agent/lazy/lazy_manager.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/net/rtnl.hpp"
#include "agent/wg/device_reader.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wg_health.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "loader/datapath.hpp"

namespace nb {

namespace {

// ---- the real implementations of the manager's ports ----

class PoolQueue : public ConnectQueue {
  public:
    explicit PoolQueue(ConnectPool& pool) : pool_(pool) {}
    void submit(ConnectPool::Job job) override { pool_.submit(std::move(job)); }

  private:
    ConnectPool& pool_;
};

void epoll_add(int ep, int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
}

// Peers as the config describes them, taken out of it: a million peers' config is not
// kept twice.
std::vector<PeerSpec> specs_from_config(WgQuickConfig&& cfg) {
    std::vector<PeerSpec> out;
    out.reserve(cfg.peers.size());
    for (auto& pc : cfg.peers) {
        PeerSpec s;
        s.wg.public_key = pc.public_key;
        s.wg.preshared_key = pc.preshared_key;
        s.wg.allowed_ips = std::move(pc.allowed_ips);
        s.endpoint = std::move(pc.endpoint);
        s.keepalive = pc.persistent_keepalive;
        s.connector = std::move(pc.connector);
        s.groups = std::move(pc.groups);
        s.lazy = pc.lazy;
        out.push_back(std::move(s));
    }
    std::vector<PeerConfig>().swap(cfg.peers);
    return out;
}

// Peers as WireGuard has them now (adopting an interface someone else configured).
std::vector<PeerSpec> specs_from_device(const WgDevice& dev) {
    std::vector<PeerSpec> out;
    out.reserve(dev.peers.size());
    for (const auto& p : dev.peers) {
        PeerSpec s;
        s.wg.public_key = p.public_key;
        s.wg.preshared_key = p.preshared_key;
        s.wg.allowed_ips = p.allowed_ips;
        if (p.endpoint) s.endpoint = p.endpoint->str();
        s.keepalive = p.persistent_keepalive;
        out.push_back(std::move(s));
    }
    return out;
}

// wireguard-go behind a health check (agent/wg/wg_health.hpp); one the agent started
// itself it starts again when it dies.
std::unique_ptr<WgControl> userspace_control(const RunOptions& opts, bool started_here) {
    WgHealth::Options o;
    o.interface = opts.interface;
    o.timeout = opts.wg_timeout;
    o.restart = started_here;
    return std::make_unique<WgHealth>(o);
}

// The interface settings of an adopted interface, to put back on a new device.
InterfaceConfig interface_as_it_is(const std::string& name, const WgDevice& dev) {
    InterfaceConfig ic;
    ic.private_key = dev.private_key;
    if (dev.listen_port) ic.listen_port = dev.listen_port;
    if (dev.fwmark) ic.fwmark = dev.fwmark;
    ic.addresses = addr_list(name);
    std::ifstream f("/sys/class/net/" + name + "/mtu");
    uint32_t mtu = 0;
    if (f >> mtu) ic.mtu = mtu;
    return ic;
}

// Makes sure the interface exists and returns its control backend; sets `created`
// when this run made it (so a failed start can remove it again).
std::unique_ptr<WgControl> open_interface(const RunOptions& opts, bool can_create, bool& created) {
    created = false;
    const std::string& name = opts.interface;
    if (link_index(name)) {
        // An existing interface decides the backend; --wg only has to agree with it.
        if (link_kind(name) == "wireguard") {
            if (opts.wg_mode == WgMode::Userspace)
                throw std::runtime_error(name + " is kernel WireGuard (--wg userspace)");
            return std::make_unique<NetlinkControl>(name);
        }
        if (opts.wg_mode == WgMode::Kernel)
            throw std::runtime_error(name + " is not a kernel WireGuard interface (--wg kernel)");
        if (!uapi_socket_exists(name))
            throw std::runtime_error(name + " exists but is not a WireGuard interface (no " +
                                     "kernel WireGuard, no wireguard-go UAPI socket)");
        return userspace_control(opts, false);
    }
    if (!can_create)
        throw std::runtime_error("interface " + name +
                                 " does not exist; give -c FILE to create it from a config");
    // As wg-quick: kernel WireGuard where the kernel has it, wireguard-go otherwise.
    bool kernel = opts.wg_mode == WgMode::Kernel ||
                  (opts.wg_mode == WgMode::Auto && kernel_wireguard_available());
    if (kernel) {
        link_add_wireguard(name);
        created = true;
        return std::make_unique<NetlinkControl>(name);
    }
    if (!wireguard_go_available())
        throw std::runtime_error("cannot create " + name + ": no kernel WireGuard and " +
                                 wireguard_go_program() + " not found (install wireguard-go)");
    start_wireguard_go(name);
    created = true;
    return userspace_control(opts, true);
}

void apply_interface_config(const RunOptions& opts, const InterfaceConfig& iface,
                            const std::vector<IpPrefix>& routes) {
    const std::string& name = opts.interface;
    if (iface.mtu) link_set_mtu(name, *iface.mtu);
    for (const auto& a : iface.addresses) addr_add(name, a);
    link_set_up(name);
    for (const auto& ip : routes) route_add(name, ip);
}

uint32_t capacity_for(size_t n) {
    // Headroom for peers added later without reloading the programs.
    return static_cast<uint32_t>(std::max<size_t>(4096, n + n / 4));
}

// Every prefix routed through the interface for a config, sorted. Default routes are
// left out: wg-quick sends them through policy routing and a fwmark, and nbagent does
// not take over the host's default route.
std::vector<IpPrefix> routed_prefixes(std::vector<IpPrefix> all, bool warn_default,
                                      const std::string& name) {
    std::erase_if(all, [&](const IpPrefix& ip) {
        if (ip.len != 0) return false;
        if (warn_default)
            spdlog::warn("not routing {} through {}: default routes are left to the operator",
                         ip.str(), name);
        return true;
    });
    std::sort(all.begin(), all.end());
    return all;
}

std::vector<IpPrefix> allowed_ips_of(const WgQuickConfig& cfg) {
    std::vector<IpPrefix> out;
    for (const auto& peer : cfg.peers)
        out.insert(out.end(), peer.allowed_ips.begin(), peer.allowed_ips.end());
    return out;
}

// The running agent: everything run_agent sets up, and what the event loop calls.
class Agent {
  public:
    explicit Agent(const RunOptions& opts)
        : opts_(opts), state_path_(state_file_path(opts.run_dir, opts.interface)) {}
    ~Agent();

    // Returns false (after logging why) when the agent could not start; nothing it
    // made is left behind.
    bool start(std::optional<WgQuickConfig> cfg, const sigset_t& mask);
    int loop();
    void shutdown(int& exit_code);

  private:
    ControlReply handle(const nlohmann::json& req, ControlServer::ClientId client);
    nlohmann::json apply_config(WgQuickConfig cfg, bool dry_run);
    void reload();
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
    void epoll_watch(int fd);
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
    bool want_udp_ = false;  // the UDP engine was chosen (forced, or auto fell back)
    std::unique_ptr<ControlServer> server_;
    AgentStatus base_status_;
    UniqueFd ep_, sfd_, tfd_;
    std::chrono::milliseconds tick_armed_{0};
    int ifindex_ = 0;
};

Agent::~Agent() {
    // The activity source reads the datapath's ring: it goes first.
    activity_.reset();
}

void Agent::epoll_watch(int fd) {
    if (ep_.get() >= 0) epoll_add(ep_.get(), fd);
}

void Agent::load_datapath(const std::vector<PeerSpec>& specs) {
    size_t routes = 0;
    V4HostBounds v4_hosts;
    for (const auto& p : specs) {
        routes += p.wg.allowed_ips.size();
        for (const auto& ip : p.wg.allowed_ips)
            if (ip.addr.family == AF_INET && ip.is_host()) v4_hosts.add(ip.addr.v4_value());
    }
    DatapathOptions dopts;
    dopts.max_peers = opts_.max_peers ? opts_.max_peers : capacity_for(specs.size());
    Dense4Range dense = dense4_range_for(v4_hosts, dopts.max_peers);
    // IPv4 host routes in the dense range take no hash entry; the hash's buckets are
    // sized by its capacity (16 bytes each, 32 MiB per million), so they do not count.
    if (dense.size) routes -= v4_hosts.count;
    dopts.max_routes = std::max(capacity_for(routes), dopts.max_peers);
    dopts.dense4_base = dense.base;
    dopts.dense4_size = dense.size;
    dopts.max_held = opts_.max_held_packets;
    dopts.ringbuf_bytes = opts_.ring_buffer_bytes;
    dp_ = std::make_unique<Datapath>(dopts);
    if (dense.size) {
        IpAddr first = IpAddr::v4(dense.base), last = IpAddr::v4(dense.base + (dense.size - 1));
        spdlog::info("datapath: {} peer slots; IPv4 host routes {} - {} in an array",
                     dopts.max_peers, first.str(), last.str());
    }
}

void Agent::attach_datapath(int ifindex) {
    hold_ = std::make_unique<BpfHold>(*dp_);
    sink_ = std::make_unique<InjectorSink>(ifindex);
    dp_->set_replay_cookie(sink_->cookie());
    dp_->attach(ifindex, attach_mode_from_string(opts_.attach_mode));
    order_ = std::make_unique<OrderWatch>(*dp_, opts_.interface, monotonic_ns());
    base_status_.trigger = "bpf";
    base_status_.attach_mode = to_string(dp_->attach_mode());
}

void Agent::prepare_trigger(const std::vector<PeerSpec>& specs) {
    want_udp_ = opts_.trigger == TriggerMode::Udp;
    if (want_udp_) return;
    try {
        load_datapath(specs);
    } catch (const std::exception& e) {
        if (opts_.trigger == TriggerMode::Bpf)
            throw std::runtime_error(std::string("--trigger bpf: ") + e.what());
        dp_.reset();
        fall_back_to_udp(e.what());
    }
}

// wireguard-go reads its tun device one packet at a time, and the tun queue (txqueuelen
// 500) drops what does not fit. The UDP engine's trigger is the initiation wireguard-go
// builds for the first packet to an idle peer, so a burst to many idle peers outran it
// and their peers never woke. The BPF engine holds packets in tc, before the queue, but
// re-injects them into it when wakes complete: under a sweep of idle peers' addresses
// hundreds complete at once, and a full queue refused the replays (ENOBUFS), a real
// peer's first packet among them. One queue slot per peer, at most 16384 (a pointer each
// while empty). Only raised, never lowered.
void Agent::widen_tun_queue(size_t peers) {
    try {
        if (link_kind(opts_.interface) == "wireguard") return;  // no tun queue to outrun
        std::ifstream f("/sys/class/net/" + opts_.interface + "/tx_queue_len");
        uint32_t now = 0;
        if (!(f >> now)) return;
        auto want = static_cast<uint32_t>(std::clamp<size_t>(peers, 1000, 16384));
        if (now >= want) return;
        link_set_txqueuelen(opts_.interface, want);
        spdlog::info(
            "txqueuelen of {} raised from {} to {} (wireguard-go reads one packet at "
            "a time; wakes in bulk must not overflow it)",
            opts_.interface, now, want);
    } catch (const std::exception& e) {
        spdlog::warn("raising the txqueuelen of {}: {}", opts_.interface, e.what());
    }
}

void Agent::fall_back_to_udp(const std::string& why) {
    spdlog::warn(
        "the BPF trigger engine is not usable ({}): falling back to per-peer UDP "
        "listeners",
        why);
    want_udp_ = true;
    base_status_.trigger_reason = why;
}

void Agent::activate_trigger(int ifindex, size_t peers) {
    if (dp_) {
        try {
            attach_datapath(ifindex);
        } catch (const std::exception& e) {
            if (opts_.trigger == TriggerMode::Bpf)
                throw std::runtime_error(std::string("--trigger bpf: ") + e.what());
            std::string why = std::string("attaching the programs: ") + e.what();
            drop_trigger();
            fall_back_to_udp(why);
        }
    }
    uint32_t capacity = opts_.max_peers ? opts_.max_peers : capacity_for(peers);
    widen_tun_queue(capacity);
    if (!want_udp_) return;
    // Checked up front: a limit hit halfway would leave some peers without a listener.
    for (const auto& w : check_udp_listener_limits(capacity)) spdlog::info("{}", w);
    UdpTrigger::Options o;
    o.capacity = capacity;
    o.forward_initiation = opts_.udp_forward_handshake;
    udp_ = std::make_unique<UdpTrigger>(
        o, [this](uint32_t id) { mgr_->on_trigger(id, monotonic_ns()); });
    base_status_.trigger = "udp";
    base_status_.attach_mode.clear();
}

void Agent::drop_trigger() {
    activity_.reset();
    udp_.reset();
    sink_.reset();
    hold_.reset();
    order_.reset();
    if (dp_) dp_->detach();
    dp_.reset();
    base_status_.trigger.clear();
    base_status_.attach_mode.clear();
}

HoldDatapath* Agent::hold_port() const {
    if (udp_) return udp_.get();
    return hold_.get();
}

void Agent::watch_activity() {
    if (dp_) {
        activity_ = std::make_unique<BpfActivitySource>(
            *dp_, BpfActivitySource::Callbacks{
                      [this](uint32_t id, std::span<const std::span<const uint8_t>> pkts,
                             uint64_t ts) { mgr_->on_held_packets(id, pkts, ts); },
                      [this](uint32_t id, uint64_t ts) { mgr_->on_rx_wake(id, ts); }});
        epoll_watch(activity_->fd());
    }
    if (udp_) epoll_watch(udp_->fd());
}

void Agent::tell_udp_wireguard_source() {
    if (!udp_) return;
    // Forwarded handshake initiations leave from WireGuard's port, with its fwmark.
    WgDevice dev = wg_->get_device();
    udp_->set_wireguard_source(dev.listen_port, dev.fwmark);
}

bool Agent::start(std::optional<WgQuickConfig> cfg, const sigset_t& mask) {
    try {
        // The control socket first: it fails fast if another agent owns the interface,
        // before anything of that agent's is touched.
        server_ = std::make_unique<ControlServer>(
            opts_.run_dir, opts_.interface,
            [this](const nlohmann::json& req, ControlServer::ClientId client) {
                return handle(req, client);
            });

        std::vector<PeerSpec> specs;
        DeviceUpdate update;
        std::vector<IpPrefix> routes;
        if (cfg) {
            routes = routed_prefixes(allowed_ips_of(*cfg), true, opts_.interface);
            specs = specs_from_config(std::move(*cfg));
            update.private_key = cfg->iface.private_key;
            update.listen_port = cfg->iface.listen_port;
            update.fwmark = cfg->iface.fwmark;
            update.replace_peers = true;
            // Before the interface is touched: a kernel that cannot run the programs
            // must not leave a half-made interface behind.
            if (opts_.lazy) prepare_trigger(specs);
        }

        if (cfg && !cfg->iface.private_key && !link_index(opts_.interface))
            throw std::runtime_error(*opts_.config_path + ": [Interface] has no PrivateKey");
        wg_ = opts_.wg_standin ? opts_.wg_standin(opts_.interface)
                               : open_interface(opts_, cfg.has_value(), created_);
        base_status_.wg_backend = wg_->backend_name();
        health_ = dynamic_cast<WgHealth*>(wg_.get());
        // Reading and installing a whole map takes long (1000 peers under emulation: over
        // 500 ms): the short limit is for the running loop, not for the start.
        if (health_)
            health_->set_call_timeout(
                std::max<std::chrono::milliseconds>(opts_.wg_timeout, std::chrono::minutes(10)));

        // What WireGuard has when this run did not make the interface: its live sessions
        // are kept (a restart must cost the remotes nothing).
        std::optional<WgDevice> current;
        if (!created_) {
            current = wg_->get_device();
            // Settings WireGuard already has are not written again: wireguard-go rebinds
            // its socket for any listen_port, which would drop what arrives meanwhile.
            if (update.private_key && current->private_key == update.private_key)
                update.private_key.reset();
            if (update.listen_port && current->listen_port == *update.listen_port)
                update.listen_port.reset();
            if (update.fwmark && current->fwmark == *update.fwmark) update.fwmark.reset();
        }
        if (!cfg) {
            adopted_iface_ = interface_as_it_is(opts_.interface, *current);
            specs = specs_from_device(*current);
            // After a crash, idle peers have no endpoint in WireGuard: the state file of
            // the previous run has them.
            merge_saved_state(specs, load_peer_state(state_path_));
            if (opts_.lazy) prepare_trigger(specs);
        }

        ifindex_ = *link_index(opts_.interface);
        if (opts_.lazy) activate_trigger(ifindex_, specs.size());
        if (udp_ && update.listen_port) udp_->reserve_port(*update.listen_port);
        if (udp_ && current && current->listen_port) udp_->reserve_port(current->listen_port);
        pool_ = std::make_unique<ConnectPool>(4, 256);
        queue_ = std::make_unique<PoolQueue>(*pool_);
        LazyOptions lopts;
        lopts.interface = opts_.interface;
        lopts.lazy = opts_.lazy;
        lopts.max_held = opts_.max_held_packets;
        lopts.exec_timeout = opts_.exec_timeout;
        lopts.connect_timeout = opts_.connect_timeout;
        lopts.backoff_base = opts_.connect_backoff;
        lopts.wake_rate = opts_.wake_rate;
        lopts.inactivity_threshold = opts_.inactivity_threshold;
        mgr_ = std::make_unique<LazyManager>(lopts, *wg_, hold_port(), sink_.get(), *queue_,
                                             [srv = server_.get()](const nlohmann::json& ev) {
                                                 if (srv->has_trace_subscribers())
                                                     srv->publish_trace(ev);
                                             });
        mgr_->set_trace_wanted([srv = server_.get()] { return srv->has_trace_subscribers(); });
        if (wg_->backend_name() == "kernel") {
            reader_ = std::make_unique<DeviceReader>([name = opts_.interface] {
                return std::unique_ptr<WgControl>(std::make_unique<NetlinkControl>(name));
            });
            mgr_->set_background_read([r = reader_.get()] { return r->start(); });
        }
        // Saved before WireGuard forgets anything, so a crash from here on loses nothing.
        if (opts_.lazy) store_endpoints(specs, "not starting");
        mgr_->install(std::move(specs), std::move(update), current ? &*current : nullptr);
        current.reset();
        if (cfg) apply_interface_config(opts_, cfg->iface, routes);
        tell_udp_wireguard_source();
        if (cfg) iface_ = cfg->iface;
        // Routes a crashed or stopped run left for peers that are gone (its mark
        // tells them apart from the operator's).
        sync_routes({}, routed_prefixes(mgr_->allowed_ips(), false, ""), false);
        cfg_path_ = opts_.config_path;
        if (health_) health_->set_call_timeout(opts_.wg_timeout);
        give_back_memory();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        activity_.reset();
        mgr_.reset();
        udp_.reset();
        order_.reset();
        dp_.reset();
        if (health_) health_->stop();  // it must not start wireguard-go again
        if (created_) {
            // Nothing half-applied: the interface this run made goes away again.
            try {
                link_delete(opts_.interface);
            } catch (const std::exception& de) {
                spdlog::warn("removing {} after a failed start: {}", opts_.interface, de.what());
            }
        }
        return false;
    }

    spdlog::info("nbagent on {}: {} peers, {} mode, WireGuard {}, trigger {}{}, inactivity {}",
                 opts_.interface, mgr_->size(), opts_.lazy ? "lazy" : "eager",
                 base_status_.wg_backend,
                 base_status_.trigger.empty() ? "none" : base_status_.trigger,
                 base_status_.attach_mode.empty() ? "" : " (" + base_status_.attach_mode + ")",
                 format_duration(opts_.inactivity_threshold));

    ep_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    sfd_ = UniqueFd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    tfd_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (ep_.get() < 0 || sfd_.get() < 0 || tfd_.get() < 0) {
        spdlog::error("creating the event loop: {}", std::strerror(errno));
        return false;
    }
    arm_tick();
    epoll_watch(sfd_.get());
    epoll_watch(tfd_.get());
    epoll_watch(pool_->event_fd());
    if (health_) epoll_watch(health_->event_fd());
    if (reader_) epoll_watch(reader_->event_fd());
    watch_activity();
    server_->register_with(ep_.get());
    return true;
}

ControlReply Agent::handle(const nlohmann::json& req, ControlServer::ClientId client) {
    const std::string cmd = req.at("cmd").get<std::string>();
    auto get_bool = [&](const char* name, bool fallback) {
        if (!req.contains(name)) return fallback;
        if (!req[name].is_boolean())
            throw std::invalid_argument(std::string("\"") + name + "\" must be true or false");
        return req[name].get<bool>();
    };
    if (cmd == "status") {
        // The peers go straight from the manager into the reply (big maps: no list of
        // per-peer objects in between).
        AgentStatus st = mgr_->status(false);
        st.wg_backend = base_status_.wg_backend;
        st.trigger = base_status_.trigger;
        st.attach_mode = base_status_.attach_mode;
        if (activity_) {
            st.ring_reports = activity_->records();
            st.gso_split = activity_->gso_split();
            st.gso_unsplit = activity_->gso_unsplit();
        }
        st.trigger_reason = base_status_.trigger_reason;
        if (order_) st.datapath_order = order_->status();
        if (health_) {
            WgHealthStatus h = health_->status();
            st.wireguard = to_string(h.state);
            st.wireguard_since = h.since;
            st.wireguard_error = h.error;
        } else {
            st.wireguard = "unchecked";  // kernel WireGuard: nothing to stop, device not watched
        }
        if (!get_bool("detail", false)) return ControlReply::raw(status_reply_text(st));
        return ControlReply::raw(status_reply_text(st, mgr_->size(), mgr_->peer_statuses()));
    }
    if (cmd == "trace") {
        server_->subscribe_trace(client);
        return nlohmann::json{{"ok", true}};
    }
    if (cmd == "peer_idle") {
        if (!req.contains("public_key") || !req["public_key"].is_string())
            throw std::invalid_argument("peer_idle needs \"public_key\" (base64)");
        auto key = WgKey::from_base64(req["public_key"].get<std::string>());
        if (!key) throw std::invalid_argument("\"public_key\" is not a WireGuard key");
        mgr_->make_idle(*key, "operator");
        return nlohmann::json{{"ok", true}};
    }
    if (cmd == "apply") {
        const bool dry_run = get_bool("dry_run", false);
        auto str = [&](const char* name) -> std::optional<std::string> {
            if (!req.contains(name)) return std::nullopt;
            if (!req[name].is_string())
                throw std::invalid_argument(std::string("\"") + name + "\" must be a string");
            return req[name].get<std::string>();
        };
        auto path = str("config_path");
        auto text = str("config_text");
        // With config_text, the file the client read it from: re-read on SIGHUP.
        auto file = str("file");
        if (path.has_value() == text.has_value())
            throw std::invalid_argument(
                "apply needs exactly one of \"config_path\" or \"config_text\"");
        if (path && file)
            throw std::invalid_argument("\"file\" goes with \"config_text\", not \"config_path\"");
        if (path) file = std::move(path);
        if (file && (file->empty() || (*file)[0] != '/'))
            throw std::invalid_argument("\"file\" and \"config_path\" must be absolute paths");
        WgQuickConfig cfg;
        try {
            // A path the agent reads itself goes through the bounded reader: regular
            // files only, so a FIFO or /dev/zero is refused without blocking the loop.
            cfg = text ? parse_wg_quick(*text, printable(str("source").value_or("control")))
                       : load_wg_quick(*file);
        } catch (const ConfigError& e) {
            throw std::invalid_argument(e.what());  // "file:line: problem" as it is
        }
        for (const auto& w : cfg.warnings) spdlog::warn("{}", w);
        nlohmann::json reply = apply_config(std::move(cfg), dry_run);
        if (file && !dry_run) cfg_path_ = file;
        return reply;
    }
    if (cmd == "set_lazy") {
        if (!req.contains("lazy"))
            throw std::invalid_argument("set_lazy needs \"lazy\": true|false");
        set_lazy(get_bool("lazy", true));
        return nlohmann::json{{"ok", true}, {"lazy", mgr_->lazy()}};
    }
    throw std::invalid_argument("unknown command '" + cmd + "'");
}

nlohmann::json Agent::apply_config(WgQuickConfig cfg, bool dry_run) {
    const uint64_t start = monotonic_ns();
    std::vector<IpPrefix> after = routed_prefixes(allowed_ips_of(cfg), false, opts_.interface);
    // The old map's prefixes: from the peers themselves, not a second copy of every one.
    std::vector<IpPrefix> before;
    if (!dry_run) before = routed_prefixes(mgr_->allowed_ips(), false, "");
    std::vector<PeerSpec> specs = specs_from_config(std::move(cfg));
    DeviceUpdate update;
    // Device settings only when they change: WireGuard would keep sessions anyway,
    // but an unchanged map should be a no-op all the way down.
    const InterfaceConfig* old = iface_ ? &*iface_ : nullptr;
    if (cfg.iface.private_key && (!old || old->private_key != cfg.iface.private_key))
        update.private_key = cfg.iface.private_key;
    if (cfg.iface.listen_port && (!old || old->listen_port != cfg.iface.listen_port))
        update.listen_port = cfg.iface.listen_port;
    if (cfg.iface.fwmark && (!old || old->fwmark != cfg.iface.fwmark))
        update.fwmark = cfg.iface.fwmark;
    const bool update_changes_source = update.listen_port || update.fwmark;
    if (udp_ && update.listen_port) {
        // WireGuard could not bind it: a listener of an idle peer holds that port.
        if (udp_->port_in_use(*update.listen_port))
            throw std::runtime_error("ListenPort " + std::to_string(*update.listen_port) +
                                     " is held by an idle peer's UDP listener on loopback; "
                                     "choose another port (nothing was changed)");
        if (!dry_run) udp_->reserve_port(*update.listen_port);
    }
    if (!dry_run) {
        // Events for peers that are about to change are handled under the old map.
        if (activity_) activity_->consume();
        if (udp_) udp_->consume();
        if (mgr_->lazy() || mgr_->has_datapath()) {
            // A crash in the middle must not lose endpoints of idle peers.
            std::vector<PeerSpec> all = mgr_->specs();
            all.insert(all.end(), specs.begin(), specs.end());
            store_endpoints(all, "the map was not applied");
            fault_point("apply:stored");
        }
    }
    MapDiff d = mgr_->apply(std::move(specs), std::move(update), dry_run);
    if (!dry_run) {
        fault_point("apply:wireguard");
        if (mgr_->has_datapath()) {
            // The file already holds every endpoint of the old and the new map: a failure
            // now loses nothing, so the applied map stands.
            try {
                save_peer_state(state_path_, mgr_->specs());
            } catch (const std::exception& e) {
                spdlog::warn(
                    "state file not trimmed to the new map: {} (it still holds every "
                    "endpoint)",
                    e.what());
            }
        }
        if (update_changes_source) tell_udp_wireguard_source();
        // Routes through the interface follow the peers' allowed IPs, as at start.
        sync_routes(before, after, true);
        fault_point("apply:routes");
        for (const auto& a : cfg.iface.addresses) {
            if (old &&
                std::find(old->addresses.begin(), old->addresses.end(), a) != old->addresses.end())
                continue;
            addr_add(opts_.interface, a);
        }
        if (old) {
            for (const auto& a : old->addresses)
                if (std::find(cfg.iface.addresses.begin(), cfg.iface.addresses.end(), a) ==
                    cfg.iface.addresses.end())
                    spdlog::warn("address {} is no longer in the config; nbagent leaves it on {}",
                                 a.str(), opts_.interface);
        }
        if (cfg.iface.mtu && (!old || old->mtu != cfg.iface.mtu))
            link_set_mtu(opts_.interface, *cfg.iface.mtu);
        iface_ = cfg.iface;
        give_back_memory();
    }
    double ms = static_cast<double>(monotonic_ns() - start) / 1e6;
    spdlog::info("{}network map: {} added, {} removed, {} changed, {} unchanged ({:.1f} ms)",
                 dry_run ? "dry run of a " : "", d.added, d.removed, d.changed, d.unchanged, ms);
    return nlohmann::json{{"ok", true},
                          {"applied", !dry_run},
                          {"diff",
                           {{"added", d.added},
                            {"removed", d.removed},
                            {"changed", d.changed},
                            {"unchanged", d.unchanged}}},
                          {"ms", ms}};
}

void Agent::sync_routes(const std::vector<IpPrefix>& old_map, const std::vector<IpPrefix>& want,
                        bool add) {
    const std::string& dev = opts_.interface;
    std::vector<LinkRoute> have;
    try {
        have = route_list(dev);
    } catch (const std::exception& e) {
        // Without the kernel's list, the old map is the best guess of what is there.
        spdlog::warn("listing routes via {}: {}", dev, e.what());
        for (const auto& p : old_map) have.push_back({p, kNbRouteProtocol});
    }
    auto in = [](const std::vector<IpPrefix>& v, const IpPrefix& p) {
        return std::binary_search(v.begin(), v.end(), p);
    };
    std::vector<IpPrefix> present;
    size_t removed = 0;
    for (const auto& r : have) {
        present.push_back(r.dst);
        if (in(want, r.dst) || (r.protocol != kNbRouteProtocol && !in(old_map, r.dst))) continue;
        try {
            route_del(dev, r.dst);
            ++removed;
        } catch (const std::exception& e) {
            spdlog::warn("removing route {} via {}: {}", r.dst.str(), dev, e.what());
        }
    }
    if (removed) spdlog::info("removed {} route(s) via {} that no peer owns", removed, dev);
    if (!add) return;
    std::sort(present.begin(), present.end());
    for (const auto& p : want) {
        if (in(present, p)) continue;
        try {
            route_add(dev, p);
        } catch (const std::exception& e) {
            spdlog::warn("route {} via {}: {}", p.str(), dev, e.what());
        }
    }
}

void Agent::reload() {
    if (!cfg_path_) {
        spdlog::warn(
            "SIGHUP: no config file to re-read (started without -c; use nbagent apply -c FILE)");
        return;
    }
    try {
        WgQuickConfig cfg = load_wg_quick(*cfg_path_);
        for (const auto& w : cfg.warnings) spdlog::warn("{}", w);
        apply_config(std::move(cfg), false);
    } catch (const ConfigError& e) {
        // The running map stays as it is.
        spdlog::error("SIGHUP: {} (nothing changed)", e.what());
    } catch (const std::exception& e) {
        spdlog::error("SIGHUP: applying {}: {}", *cfg_path_, e.what());
    }
}

void Agent::set_lazy(bool lazy) {
    // Before anything changes: lazy peers lose their endpoints in WireGuard.
    if (lazy && !mgr_->lazy()) store_endpoints(mgr_->specs(), "lazy mode stays off");
    if (lazy && !mgr_->has_datapath()) {
        // Started eager: load and attach the programs now, sized for what we have.
        try {
            prepare_trigger(mgr_->specs());
            activate_trigger(ifindex_, mgr_->size());
            mgr_->attach_datapath(hold_port(), sink_.get());
            tell_udp_wireguard_source();
        } catch (...) {
            drop_trigger();
            throw;
        }
        watch_activity();
    }
    mgr_->set_lazy(lazy);
}

void Agent::store_endpoints(const std::vector<PeerSpec>& specs, const std::string& consequence) {
    try {
        save_peer_state(state_path_, specs);
    } catch (const std::exception& e) {
        // No peer may lose its endpoint in WireGuard unless a restart can bring it back.
        throw std::runtime_error("cannot store the peers' endpoints (" + std::string(e.what()) +
                                 "); " + consequence +
                                 ": no endpoint may be forgotten that "
                                 "is not safely stored");
    }
}

void Agent::arm_tick() {
    // The manager ticks faster while packets wait for a handshake it must poll for.
    auto every = mgr_->tick_interval();
    if (every == tick_armed_) return;
    tick_armed_ = every;
    itimerspec its{};
    its.it_interval.tv_sec = every.count() / 1000;
    its.it_interval.tv_nsec = (every.count() % 1000) * 1000000;
    its.it_value = its.it_interval;
    timerfd_settime(tfd_.get(), 0, &its, nullptr);
}

int Agent::loop() {
    int exit_code = 0;
    bool running = true;
    while (running) {
        epoll_event evs[64];
        int n = epoll_wait(ep_.get(), evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("epoll_wait: {}", std::strerror(errno));
            exit_code = 1;
            break;
        }
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            try {
                if (fd == sfd_.get()) {
                    signalfd_siginfo si{};
                    while (read(sfd_.get(), &si, sizeof(si)) == sizeof(si)) {
                        if (si.ssi_signo == SIGHUP) {
                            reload();
                        } else {
                            spdlog::info("signal {}: shutting down", strsignal(si.ssi_signo));
                            running = false;
                        }
                    }
                } else if (fd == tfd_.get()) {
                    uint64_t expirations = 0;
                    [[maybe_unused]] ssize_t r =
                        read(tfd_.get(), &expirations, sizeof(expirations));
                    mgr_->tick(monotonic_ns());
                    // Another tool may attach ahead of our programs at any time.
                    if (order_) order_->tick(monotonic_ns());
                } else if (activity_ && fd == activity_->fd()) {
                    activity_->consume();
                } else if (udp_ && fd == udp_->fd()) {
                    udp_->consume();
                } else if (fd == pool_->event_fd()) {
                    mgr_->on_connect_batch(pool_->drain());
                } else if (health_ && fd == health_->event_fd()) {
                    on_wg_events();
                } else if (reader_ && fd == reader_->event_fd()) {
                    if (auto r = reader_->take())
                        mgr_->on_device_read(std::move(r->device), r->error, r->took_ns,
                                             monotonic_ns());
                } else if (server_->owns(fd)) {
                    server_->handle_event(fd, evs[i].events);
                }
            } catch (const std::exception& e) {
                // One bad event must not take the agent down with every peer in it.
                spdlog::error("event handling: {}", e.what());
            }
        }
        arm_tick();
    }
    return exit_code;
}

void Agent::shutdown(int& exit_code) {
    if (health_) health_->stop();  // no wireguard-go started again from here on
    // Clean exit: endpoints back, last held packets out, then the programs go.
    bool restored = false;
    try {
        if (wg_->available()) {
            mgr_->restore_all();
            restored = true;
            remove_peer_state(state_path_);
        }
        if (activity_) activity_->consume();
    } catch (const std::exception& e) {
        if (wg_->available()) {
            spdlog::error("restoring endpoints: {}", e.what());
            exit_code = 1;
        }
    }
    // Not the agent's failure: the state file lets the next start give them back.
    if (!restored && !wg_->available())
        spdlog::warn("{}: endpoints not restored; {} keeps them for the next start",
                     wg_->unavailable_reason(), state_path_);
    activity_.reset();
    order_.reset();
    if (dp_) dp_->detach();
    spdlog::info("nbagent on {} stopped", opts_.interface);
}

void Agent::on_wg_events() {
    for (const WgHealthEvent& ev : health_->take_events()) {
        if (ev.kind == WgHealthEvent::Kind::Lost)
            wg_lost(ev.reason);
        else
            wg_answering(ev);
    }
}

void Agent::wg_lost(const std::string& reason) {
    if (wg_lost_) return;
    wg_lost_ = true;
    spdlog::error("WireGuard on {} lost: {}; every peer is Idle until it is back ({})",
                  opts_.interface, reason,
                  created_ ? "the agent starts wireguard-go again"
                           : "start it again and the agent takes it over");
    mgr_->wireguard_lost(reason);
    // The links went dead with the device; closing them leaves nothing behind.
    if (dp_) dp_->detach();
    server_->publish_trace(
        {{"event", "wireguard"}, {"ts", rfc3339_now()}, {"state", "lost"}, {"error", reason}});
}

void Agent::wg_answering(const WgHealthEvent& ev) {
    // A device replaced under us is a loss too: none of its peers is what we left.
    if (ev.ifindex != ifindex_)
        wg_lost("device replaced (ifindex " + std::to_string(ifindex_) + ", now " +
                std::to_string(ev.ifindex) + ")");
    const InterfaceConfig& ic = iface_ ? *iface_ : adopted_iface_;
    if (wg_lost_) {
        // A new device: the programs and the interface's settings go on it first, so the
        // peers hold before WireGuard has them, as at start.
        ifindex_ = ev.ifindex;
        try {
            if (dp_) {
                dp_->attach(ifindex_, attach_mode_from_string(base_status_.attach_mode));
                sink_->rebind(ifindex_);
                dp_->set_replay_cookie(sink_->cookie());
            }
            widen_tun_queue(mgr_->size());
            // Routes follow the map (marked as ours), adopted interface or not.
            apply_interface_config(opts_, ic, routed_prefixes(mgr_->allowed_ips(), false, ""));
        } catch (const std::exception& e) {
            spdlog::error("taking over the new {}: {}", opts_.interface, e.what());
        }
    }
    DeviceUpdate device;
    device.private_key = ic.private_key;
    device.listen_port = ic.listen_port;
    device.fwmark = ic.fwmark;
    health_->resume(ev.ifindex);
    try {
        ReconcileCounts n = mgr_->reconcile(ev.device, std::move(device));
        tell_udp_wireguard_source();
        const bool was_lost = wg_lost_;
        wg_lost_ = false;
        spdlog::info(
            "WireGuard on {} answers again{}: {} peers added, {} set right, {} removed{} (its "
            "dump took {})",
            opts_.interface, was_lost ? " on a new device" : "", n.added, n.fixed, n.removed,
            n.device ? ", device settings set again" : "", format_duration(ev.took));
        if (ev.took > opts_.wg_timeout)
            spdlog::warn("a dump of {} takes longer than --wg-timeout ({}): raise it",
                         opts_.interface, format_duration(opts_.wg_timeout));
        server_->publish_trace({{"event", "wireguard"},
                                {"ts", rfc3339_now()},
                                {"state", "ok"},
                                {"added", n.added},
                                {"fixed", n.fixed},
                                {"removed", n.removed}});
    } catch (const std::exception& e) {
        // Not answering again: the probe reports when it does, and this runs again.
        spdlog::error("making WireGuard on {} agree with the agent: {}", opts_.interface, e.what());
    }
}

}  // namespace

sigset_t block_agent_signals() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    return mask;
}

int run_agent(const RunOptions& opts) {
    tune_allocator();
    std::optional<WgQuickConfig> cfg;
    if (opts.config_path) {
        try {
            cfg = load_wg_quick(*opts.config_path);
        } catch (const ConfigError& e) {
            spdlog::error("{}", e.what());
            return 1;
        }
        for (const auto& w : cfg->warnings) spdlog::warn("{}", w);
    }

    // Signals are read from a signalfd so that shutdown runs on the loop, in order.
    const sigset_t mask = block_agent_signals();
    signal(SIGPIPE, SIG_IGN);

    Agent agent(opts);
    if (!agent.start(std::move(cfg), mask)) return 1;
    int exit_code = agent.loop();
    agent.shutdown(exit_code);
    return exit_code;
}

}  // namespace nb
