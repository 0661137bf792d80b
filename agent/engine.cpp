#include "agent/engine.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/activity/bpf_activity.hpp"
#include "agent/activity/packet_injector.hpp"
#include "agent/common/unique_fd.hpp"
#include "agent/config/wg_quick.hpp"
#include "agent/connector/connect_pool.hpp"
#include "agent/control/control_server.hpp"
#include "agent/control/protocol.hpp"
#include "agent/lazy/lazy_manager.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/net/rtnl.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "loader/datapath.hpp"

namespace nb {

namespace {

// ---- the real implementations of the manager's ports ----

class BpfHold : public HoldDatapath {
  public:
    explicit BpfHold(Datapath& dp) : dp_(dp) {}
    void install_peer(uint32_t id, const std::vector<IpPrefix>& routes, bool hold) override {
        dp_.reset_slot(id, hold ? NB_SLOT_HOLD : NB_SLOT_PASS);
        for (const auto& r : routes) dp_.add_route(r, id);
    }
    void remove_peer(uint32_t id, const std::vector<IpPrefix>& routes) override {
        for (const auto& r : routes) dp_.del_route(r);
        dp_.reset_slot(id, NB_SLOT_UNUSED);
    }
    void set_hold(uint32_t id, bool hold) override {
        dp_.set_state(id, hold ? NB_SLOT_HOLD : NB_SLOT_PASS);
    }
    void release_pending(uint32_t id, uint32_t n) override { dp_.release_pending(id, n); }
    SlotCounters counters(uint32_t id) const override {
        const nb_peer_slot& s = dp_.slot(id);
        auto load = [](const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); };
        return {load(s.held),       load(s.dropped),    load(s.tx_packets),
                load(s.rx_packets), load(s.last_tx_ns), load(s.last_rx_ns)};
    }

  private:
    Datapath& dp_;
};

class InjectorSink : public PacketSink {
  public:
    explicit InjectorSink(int ifindex) : inj_(ifindex) {}
    uint64_t cookie() const { return inj_.socket_cookie(); }
    bool inject(std::span<const uint8_t> packet) override {
        try {
            inj_.inject(packet);
            return true;
        } catch (const std::system_error& e) {
            spdlog::warn("re-injection failed: {}", e.what());
            return false;
        } catch (const std::invalid_argument& e) {
            spdlog::warn("held bytes are not an IP packet: {}", e.what());
            return false;
        }
    }

  private:
    PacketInjector inj_;
};

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

// Peers as the config describes them.
std::vector<PeerSpec> specs_from_config(const WgQuickConfig& cfg) {
    std::vector<PeerSpec> out;
    out.reserve(cfg.peers.size());
    for (const auto& pc : cfg.peers) {
        PeerSpec s;
        s.wg.public_key = pc.public_key;
        s.wg.preshared_key = pc.preshared_key;
        s.wg.allowed_ips = pc.allowed_ips;
        s.endpoint = pc.endpoint;
        s.keepalive = pc.persistent_keepalive;
        s.connector = pc.connector;
        out.push_back(std::move(s));
    }
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
        return std::make_unique<UapiControl>(name);
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
    return std::make_unique<UapiControl>(name);
}

void apply_interface_config(const RunOptions& opts, const WgQuickConfig& cfg) {
    const std::string& name = opts.interface;
    if (cfg.iface.mtu) link_set_mtu(name, *cfg.iface.mtu);
    for (const auto& a : cfg.iface.addresses) addr_add(name, a);
    link_set_up(name);
    for (const auto& peer : cfg.peers) {
        for (const auto& ip : peer.allowed_ips) {
            if (ip.len == 0) {
                // wg-quick sends default routes through policy routing and a fwmark;
                // nbagent does not take over the host's default route.
                spdlog::warn("not routing {} through {}: default routes are left to the operator",
                             ip.str(), name);
                continue;
            }
            route_add(name, ip);
        }
    }
}

uint32_t capacity_for(size_t n) {
    // Headroom for peers added later without reloading the programs.
    return static_cast<uint32_t>(std::max<size_t>(4096, n + n / 4));
}

}  // namespace

int run_agent(const RunOptions& opts) {
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
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);

    const std::string state_path = state_file_path(opts.run_dir, opts.interface);
    bool created = false;
    std::unique_ptr<WgControl> wg;
    std::unique_ptr<Datapath> dp;
    std::unique_ptr<BpfHold> hold;
    std::unique_ptr<InjectorSink> sink;
    std::unique_ptr<ConnectPool> pool;
    std::unique_ptr<PoolQueue> queue;
    std::unique_ptr<LazyManager> mgr;
    std::unique_ptr<BpfActivitySource> activity;
    std::unique_ptr<ControlServer> server;
    AgentStatus base_status;

    try {
        // The control socket first: it fails fast if another agent owns the interface,
        // before anything of that agent's is touched.
        server = std::make_unique<ControlServer>(
            opts.run_dir, opts.interface,
            [&](const nlohmann::json& req, ControlServer::ClientId client) -> ControlReply {
                const std::string cmd = req.at("cmd").get<std::string>();
                if (cmd == "status") {
                    bool detail = false;
                    if (req.contains("detail")) {
                        if (!req["detail"].is_boolean())
                            throw std::invalid_argument("\"detail\" must be true or false");
                        detail = req["detail"].get<bool>();
                    }
                    AgentStatus st = mgr->status(detail);
                    st.wg_backend = base_status.wg_backend;
                    st.trigger = base_status.trigger;
                    st.attach_mode = base_status.attach_mode;
                    return ControlReply::raw(status_reply_text(st));
                }
                if (cmd == "trace") {
                    server->subscribe_trace(client);
                    return nlohmann::json{{"ok", true}};
                }
                if (cmd == "peer_idle") {
                    if (!req.contains("public_key") || !req["public_key"].is_string())
                        throw std::invalid_argument("peer_idle needs \"public_key\" (base64)");
                    auto key = WgKey::from_base64(req["public_key"].get<std::string>());
                    if (!key) throw std::invalid_argument("\"public_key\" is not a WireGuard key");
                    mgr->make_idle(*key, "operator");
                    return nlohmann::json{{"ok", true}};
                }
                throw std::invalid_argument("unknown command '" + cmd + "'");
            });

        auto load_datapath = [&](const std::vector<PeerSpec>& specs) {
            if (!opts.lazy) return;
            size_t routes = 0;
            for (const auto& p : specs) routes += p.wg.allowed_ips.size();
            DatapathOptions dopts;
            dopts.max_peers = capacity_for(specs.size());
            dopts.max_routes = capacity_for(routes);
            dopts.max_held = opts.max_held_packets;
            dp = std::make_unique<Datapath>(dopts);
        };
        std::vector<PeerSpec> specs;
        DeviceUpdate update;
        if (cfg) {
            specs = specs_from_config(*cfg);
            update.private_key = cfg->iface.private_key;
            update.listen_port = cfg->iface.listen_port;
            update.fwmark = cfg->iface.fwmark;
            update.replace_peers = true;
            // Before the interface is touched: a kernel that cannot run the programs
            // must not leave a half-made interface behind.
            load_datapath(specs);
        }

        if (cfg && !cfg->iface.private_key && !link_index(opts.interface))
            throw std::runtime_error(*opts.config_path + ": [Interface] has no PrivateKey");
        wg = open_interface(opts, cfg.has_value(), created);
        base_status.wg_backend = wg->backend_name();

        if (!cfg) {
            specs = specs_from_device(wg->get_device());
            // After a crash, idle peers have no endpoint in WireGuard: the state file of
            // the previous run has them.
            merge_saved_state(specs, load_peer_state(state_path));
            load_datapath(specs);
        }

        int ifindex = *link_index(opts.interface);
        if (dp) {
            hold = std::make_unique<BpfHold>(*dp);
            sink = std::make_unique<InjectorSink>(ifindex);
            dp->set_replay_cookie(sink->cookie());
            dp->attach(ifindex, attach_mode_from_string(opts.attach_mode));
            base_status.trigger = "bpf";
            base_status.attach_mode = to_string(dp->attach_mode());
        }
        pool = std::make_unique<ConnectPool>();
        queue = std::make_unique<PoolQueue>(*pool);
        LazyOptions lopts;
        lopts.interface = opts.interface;
        lopts.lazy = opts.lazy;
        lopts.max_held = opts.max_held_packets;
        lopts.exec_timeout = opts.exec_timeout;
        mgr = std::make_unique<LazyManager>(lopts, *wg, hold.get(), sink.get(), *queue,
                                            [srv = server.get()](const nlohmann::json& ev) {
                                                if (srv->has_trace_subscribers())
                                                    srv->publish_trace(ev);
                                            });
        // Saved before WireGuard forgets anything, so a crash from here on loses nothing.
        if (opts.lazy) save_peer_state(state_path, specs);
        mgr->install(std::move(specs), std::move(update));
        if (cfg) apply_interface_config(opts, *cfg);
        if (dp) {
            activity = std::make_unique<BpfActivitySource>(
                *dp, BpfActivitySource::Callbacks{
                         [&](uint32_t id, std::span<const uint8_t> pkt, uint64_t ts) {
                             mgr->on_held_packet(id, pkt, ts);
                         },
                         [&](uint32_t id, uint64_t ts) { mgr->on_remote_activity(id, ts); }});
        }
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        mgr.reset();
        dp.reset();
        if (created) {
            // Nothing half-applied: the interface this run made goes away again.
            try {
                link_delete(opts.interface);
            } catch (const std::exception& de) {
                spdlog::warn("removing {} after a failed start: {}", opts.interface, de.what());
            }
        }
        return 1;
    }

    spdlog::info("nbagent on {}: {} peers, {} mode, WireGuard {}, trigger {}{}", opts.interface,
                 mgr->size(), opts.lazy ? "lazy" : "eager", base_status.wg_backend,
                 base_status.trigger.empty() ? "none" : base_status.trigger,
                 base_status.attach_mode.empty() ? "" : " (" + base_status.attach_mode + ")");

    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    UniqueFd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    epoll_add(ep.get(), sfd.get());
    epoll_add(ep.get(), pool->event_fd());
    if (activity) epoll_add(ep.get(), activity->fd());
    server->register_with(ep.get());

    int exit_code = 0;
    bool running = true;
    while (running) {
        epoll_event evs[64];
        int n = epoll_wait(ep.get(), evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("epoll_wait: {}", std::strerror(errno));
            exit_code = 1;
            break;
        }
        for (int i = 0; i < n; ++i) {
            int fd = evs[i].data.fd;
            try {
                if (fd == sfd.get()) {
                    signalfd_siginfo si{};
                    while (read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
                        if (si.ssi_signo == SIGHUP) {
                            spdlog::warn("SIGHUP: reloading the network map is not supported yet");
                        } else {
                            spdlog::info("signal {}: shutting down", strsignal(si.ssi_signo));
                            running = false;
                        }
                    }
                } else if (activity && fd == activity->fd()) {
                    activity->consume();
                } else if (fd == pool->event_fd()) {
                    for (const auto& done : pool->drain()) mgr->on_connect_done(done);
                } else if (server->owns(fd)) {
                    server->handle_event(fd, evs[i].events);
                }
            } catch (const std::exception& e) {
                // One bad event must not take the agent down with every peer in it.
                spdlog::error("event handling: {}", e.what());
            }
        }
    }

    // Clean exit: endpoints back, last held packets out, then the programs go.
    try {
        mgr->restore_all();
        remove_peer_state(state_path);
        if (activity) activity->consume();
    } catch (const std::exception& e) {
        spdlog::error("restoring endpoints: {}", e.what());
        exit_code = 1;
    }
    activity.reset();
    if (dp) dp->detach();
    spdlog::info("nbagent on {} stopped", opts.interface);
    return exit_code;
}

}  // namespace nb
