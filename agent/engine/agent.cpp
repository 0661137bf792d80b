// The running agent: start, the event loop, shutdown; and run_agent.
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

#include "agent/control/trace_json.hpp"
#include "agent/debug/thread_stacks.hpp"
#include "agent/engine/agent.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/fault_point.hpp"
#include "base/memory.hpp"
#include "base/net/rtnl.hpp"
#include "base/printable.hpp"

namespace nb::engine {

namespace {

LazyOptions lazy_options(const RunOptions& opts) {
    // The rest keep the manager's defaults.
    return LazyOptions{.interface = opts.interface,
                       .lazy = opts.lazy,
                       .max_held = opts.max_held_packets,
                       .exec_timeout = opts.exec_timeout,
                       .connect_timeout = opts.connect_timeout,
                       .inactivity_threshold = opts.inactivity_threshold,
                       .backoff_base = opts.connect_backoff,
                       .wake_rate = opts.wake_rate};
}

// The settings of a device, to compare a config's with.
InterfaceConfig device_settings(const WgDevice& dev) {
    InterfaceConfig ic;
    ic.private_key = dev.private_key;
    ic.listen_port = dev.listen_port;
    ic.fwmark = dev.fwmark;
    return ic;
}

}  // namespace

Agent::~Agent() {
    // Their threads report into members declared after them (fleet_pending_): they stop
    // before anything of the agent goes.
    stop_fleet();
    // The activity source reads the datapath's ring: it goes first.
    activity_.reset();
    if (debug_) stop_cpu_profile();
    drop_log_ring();
}

void Agent::record_trace(const TraceEvent& ev) {
    const int64_t now = unix_ms();
    trace_ring_.push(now, ev);
    if (server_->has_trace_subscribers()) server_->publish_trace(trace_json(ev, now));
}

void Agent::keep_log_lines() {
    if (opts_.log_ring == 0) return;
    // Beside the normal sinks, before any other thread logs (sinks() is not locked).
    log_ring_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(opts_.log_ring);
    log_ring_->set_formatter(agent_log_formatter());
    spdlog::default_logger()->sinks().push_back(log_ring_);
}

void Agent::drop_log_ring() {
    if (!log_ring_) return;
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), log_ring_), sinks.end());
    log_ring_.reset();
}

void Agent::watch(int fd, FdTable::Callback cb) {
    if (fds_) fds_->watch(fd, std::move(cb));
}

void Agent::claim_resources() {
    // Before anything of another agent's could be touched: its interface, its
    // control socket (another --run-dir would not meet it there), its state file.
    lock_ = InstanceLock::acquire(opts_.interface);
    // The control socket next: it fails fast if a path is taken.
    server_ = std::make_unique<ControlServer>(
        opts_.run_dir, opts_.interface,
        [this](const ControlRequest& req, ControlServer::ClientId client) {
            return handle(req, client);
        });
    // Next, for the same reason: a port in use refuses the start before anything.
    start_time_s_ = static_cast<double>(unix_ms()) / 1e3;
    if (opts_.metrics_listen) metrics_ = std::make_unique<MetricsServer>(*opts_.metrics_listen);
    // The store before the map: with --map etcd its nodes are peers of the first one.
    start_fleet();
}

bool Agent::start(std::optional<WgQuickConfig> cfg, const sigset_t& mask) {
    keep_log_lines();
    try {
        claim_resources();
        // With --map etcd the mesh's nodes are peers of the first map.
        if (cfg) cfg = with_fleet_peers(std::move(*cfg));

        std::vector<PeerSpec> specs;
        std::vector<IpPrefix> routes;
        if (cfg) {
            routes = routed_prefixes(allowed_ips_of(*cfg), true, opts_.interface);
            specs = specs_from_config(std::move(*cfg));
            // Before the interface is touched: a kernel that cannot run the programs
            // must not leave a half-made interface behind.
            if (opts_.lazy) prepare_trigger(specs);
        }

        open_wireguard(cfg ? &cfg->iface : nullptr);
        // What WireGuard has when this run did not make the interface: its live sessions
        // are kept (a restart must cost the remotes nothing).
        std::optional<WgDevice> current = read_device();
        DeviceUpdate update;
        if (cfg) {
            const InterfaceConfig have = current ? device_settings(*current) : InterfaceConfig{};
            update = changed_settings(cfg->iface, current ? &have : nullptr);
            update.replace_peers = true;
        } else {
            specs = adopt_device(*current);
            if (opts_.lazy) prepare_trigger(specs);
        }

        ifindex_ = *link_index(opts_.interface);
        if (opts_.lazy) activate_trigger(ifindex_, specs.size());
        if (udp_ && update.listen_port) udp_->reserve_port(*update.listen_port);
        if (udp_ && current && current->listen_port) udp_->reserve_port(current->listen_port);
        pool_ = std::make_unique<ConnectPool>(4, 256);
        queue_ = std::make_unique<PoolQueue>(*pool_);
        LazyOptions lopts = lazy_options(opts_);
        lopts.fleet = fleet_dir_;
        mgr_ = std::make_unique<LazyManager>(lopts, *wg_, hold_port(), sink_.get(), *queue_,
                                             [this](const TraceEvent& ev) { record_trace(ev); });
        // Drops only for a live trace: a sweep of idle peers' addresses drops thousands
        // a second, which would cost each one a built event and push everything else
        // out of the ring (debug bundles) within seconds.
        mgr_->set_trace_wanted([srv = server_.get()] { return srv->has_trace_subscribers(); });
        if (wg_->backend() == WgBackend::Kernel) start_device_reader();
        // Saved before WireGuard forgets anything, so a crash from here on loses nothing.
        if (opts_.lazy) store_endpoints(specs, "not starting");
        mgr_->install(std::move(specs), std::move(update), current ? &*current : nullptr);
        current.reset();
        if (cfg) apply_interface_config(opts_, cfg->iface, routes);
        tell_udp_wireguard_source();
        if (cfg) iface_ = cfg->iface;
        if (cfg) start_registration(cfg->iface);
        // Routes a crashed or stopped run left for peers that are gone (its mark
        // tells them apart from the operator's).
        sync_routes({}, routed_prefixes(mgr_->allowed_ips(), false, ""), false);
        cfg_path_ = opts_.config_path;
        if (health_) health_->set_call_timeout(opts_.wg_timeout);
        give_back_memory();
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        undo_start();
        return false;
    }

    log_started();
    if (!open_event_loop(mask)) return false;
    notifier_.ready(service_status());
    return true;
}

void Agent::log_started() const {
    spdlog::info("nbagent on {}: {} peers, {} mode, WireGuard {}, trigger {}{}, inactivity {}",
                 opts_.interface, mgr_->size(), opts_.lazy ? "lazy" : "eager",
                 to_string(base_status_.wg_backend),
                 base_status_.trigger ? to_string(*base_status_.trigger) : "none",
                 base_status_.attach_mode
                     ? std::string(" (") + to_string(*base_status_.attach_mode) + ")"
                     : std::string(),
                 format_duration(opts_.inactivity_threshold));
}

// Kernel WireGuard: the handshake polls read the device off the loop.
void Agent::start_device_reader() {
    reader_ = std::make_unique<DeviceReader>([name = opts_.interface] {
        return std::unique_ptr<WgControl>(std::make_unique<NetlinkControl>(name));
    });
    mgr_->set_background_read([r = reader_.get()] { return r->start(); });
}

void Agent::open_wireguard(const InterfaceConfig* iface) {
    if (iface && !iface->private_key && !link_index(opts_.interface))
        throw std::runtime_error(*opts_.config_path + ": [Interface] has no PrivateKey");
    wg_ = opts_.wg_standin ? opts_.wg_standin(opts_.interface)
                           : open_interface(opts_, iface != nullptr, created_);
    base_status_.wg_backend = wg_->backend();
    health_ = dynamic_cast<WgHealth*>(wg_.get());
    // Reading and installing a whole map takes long (1000 peers under emulation: over
    // 500 ms): the short limit is for the running loop, not for the start.
    if (health_)
        health_->set_call_timeout(
            std::max<std::chrono::milliseconds>(opts_.wg_timeout, std::chrono::minutes(10)));
}

std::optional<WgDevice> Agent::read_device() {
    if (created_) return std::nullopt;
    return wg_->get_device();
}

std::vector<PeerSpec> Agent::adopt_device(const WgDevice& dev) {
    adopted_iface_ = interface_as_it_is(opts_.interface, dev);
    std::vector<PeerSpec> specs = specs_from_device(dev);
    // After a crash, idle peers have no endpoint in WireGuard: the state file of the
    // previous run has them.
    merge_saved_state(specs, load_peer_state(state_path_));
    return specs;
}

void Agent::undo_start() {
    activity_.reset();
    mgr_.reset();
    udp_.reset();
    order_.reset();
    dp_.reset();
    if (health_) health_->stop();  // it must not start wireguard-go again
    if (!created_) return;
    // Nothing half-applied: the interface this run made goes away again.
    try {
        link_delete(opts_.interface);
    } catch (const std::exception& de) {
        spdlog::warn("removing {} after a failed start: {}", opts_.interface, de.what());
    }
}

bool Agent::open_event_loop(const sigset_t& mask) {
    try {
        fds_ = std::make_unique<FdTable>();
    } catch (const std::system_error& e) {
        spdlog::error("creating the event loop: {}", e.what());
        return false;
    }
    sfd_ = UniqueFd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    tfd_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (sfd_.get() < 0 || tfd_.get() < 0) {
        spdlog::error("creating the event loop: {}", std::strerror(errno));
        return false;
    }
    arm_tick();
    watch(sfd_.get(), [this](uint32_t) { on_signals(); });
    watch(tfd_.get(), [this](uint32_t) { on_tick(); });
    watch(pool_->event_fd(), [this](uint32_t) { mgr_->on_connect_batch(pool_->drain()); });
    if (health_) watch(health_->event_fd(), [this](uint32_t) { on_wg_events(); });
    if (fleet_efd_.get() >= 0) watch(fleet_efd_.get(), [this](uint32_t) { on_fleet_events(); });
    if (reader_) {
        watch(reader_->event_fd(), [this](uint32_t) {
            if (auto r = reader_->take())
                mgr_->on_device_read(std::move(r->device), r->error, r->took_ns, monotonic_ns());
        });
    }
    watch_activity();
    if (metrics_)
        watch(metrics_->event_fd(), [this](uint32_t) { metrics_->answer(metrics_snapshot()); });
    // The control server adds and removes its clients' fds itself.
    server_->register_with(fds_->epoll_fd());
    fds_->set_fallback([this](int fd, uint32_t events) {
        if (server_->owns(fd)) server_->handle_event(fd, events);
    });
    return true;
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
    while (running_) {
        epoll_event evs[64];
        int n = epoll_wait(fds_->epoll_fd(), evs, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            spdlog::error("epoll_wait: {}", std::strerror(errno));
            exit_code = 1;
            break;
        }
        for (int i = 0; i < n; ++i) {
            try {
                fds_->dispatch(evs[i].data.fd, evs[i].events);
            } catch (const std::exception& e) {
                // One bad event must not take the agent down with every peer in it.
                spdlog::error("event handling: {}", e.what());
            }
        }
        arm_tick();
    }
    return exit_code;
}

void Agent::on_signals() {
    signalfd_siginfo si{};
    while (read(sfd_.get(), &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            reload();
        } else {
            spdlog::info("signal {}: shutting down", strsignal(si.ssi_signo));
            running_ = false;
        }
    }
}

void Agent::on_tick() {
    uint64_t expirations = 0;
    [[maybe_unused]] ssize_t r = read(tfd_.get(), &expirations, sizeof(expirations));
    mgr_->tick(monotonic_ns());
    debug_tick(monotonic_ns());
    // Another tool may attach ahead of our programs at any time.
    if (order_) order_->tick(monotonic_ns());
    if (notifier_.active()) notifier_.status(service_status(), monotonic_ns());
}

std::string Agent::service_status() const {
    const LazyStatus s = mgr_->status(false);
    std::string out = std::to_string(s.idle + s.connecting + s.connected);
    out.append(" peers: ").append(std::to_string(s.idle)).append(" Idle, ");
    out.append(std::to_string(s.connecting)).append(" Connecting, ");
    out.append(std::to_string(s.connected)).append(" Connected");
    return out;
}

void Agent::shutdown(int& exit_code) {
    notifier_.stopping();
    stop_fleet();
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

}  // namespace nb::engine

namespace nb {

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
    log_like_an_agent();
    tune_allocator();
    // Before any thread starts: debug bundles ask each thread for its stack.
    debug::install_thread_stack_handler();
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

    engine::Agent agent(opts);
    if (!agent.start(std::move(cfg), mask)) return 1;
    int exit_code = agent.loop();
    agent.shutdown(exit_code);
    return exit_code;
}

}  // namespace nb
