// What the control socket asks of the running agent, and SIGHUP: status, trace,
// peer idle, apply, set lazy.
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

#include "agent/control/request.hpp"
#include "agent/control/status_map.hpp"
#include "agent/control/trace_filter.hpp"
#include "agent/control/trace_json.hpp"
#include "agent/engine/agent.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/build_info.hpp"
#include "base/fault_point.hpp"
#include "base/memory.hpp"
#include "base/net/rtnl.hpp"
#include "base/printable.hpp"

namespace nb::engine {

ControlReply Agent::handle(const ControlRequest& req, ControlServer::ClientId client) {
    struct Dispatch {
        Agent& a;
        ControlServer::ClientId client;
        ControlReply operator()(const StatusRequest& r) const { return a.status_reply(r); }
        ControlReply operator()(const TraceRequest& r) const {
            nlohmann::json reply = a.trace_reply(r);
            if (r.follow) a.server_->subscribe_trace(client);
            return reply;
        }
        ControlReply operator()(const PeerIdleRequest& r) const {
            a.mgr_->make_idle(r.public_key, "operator");
            return nlohmann::json{{"ok", true}};
        }
        ControlReply operator()(const ApplyRequest& r) const {
            if (r.dry_run) return a.apply_request(r);
            try {
                nlohmann::json reply = a.apply_request(r);
                ++a.maps_.applied;
                return reply;
            } catch (...) {
                ++a.maps_.failed;
                throw;
            }
        }
        ControlReply operator()(const SetLazyRequest& r) const {
            a.set_lazy(r.lazy);
            return nlohmann::json{{"ok", true}, {"lazy", a.mgr_->lazy()}};
        }
        ControlReply operator()(const DebugRequest& r) const { return a.debug_request(r); }
        ControlReply operator()(const PeerWakeRequest& r) const { return a.peer_wake(r); }
        ControlReply operator()(const SetRequest& r) const { return a.set_request(r); }
    };
    spdlog::debug("control: {} request from client {}", command_name(req), client);
    return std::visit(Dispatch{*this, client}, req);
}

ControlReply Agent::status_reply(const StatusRequest& req) {
    // The peers go straight from the manager into the reply (big maps: no list of
    // per-peer objects in between).
    AgentStatus st = agent_status(opts_.interface, mgr_->status(false));
    st.wg_backend = base_status_.wg_backend;
    st.trigger = base_status_.trigger;
    st.attach_mode = base_status_.attach_mode;
    if (activity_) {
        st.ring_reports = activity_->records();
        st.gso_split = activity_->gso_split();
        st.gso_unsplit = activity_->gso_unsplit();
    }
    st.trigger_reason = base_status_.trigger_reason;
    if (fleet_sync_) {
        StoreStatus ss;
        ss.state = store_state_;
        ss.mesh = opts_.fleet.mesh;
        ss.nodes = fleet_dir_->size();
        ss.revision = fleet_dir_->revision();
        ss.registered = registration_ && registration_->lease() != 0;
        ss.range_reads = fleet_sync_->range_reads();
        ss.streams = fleet_sync_->streams();
        ss.requests = etcd_->requests();
        st.store = ss;
    }
    st.version = std::string(build_info().version);
    st.started = rfc3339(static_cast<int64_t>(start_time_s_ * 1000));
    st.uptime_s = (unix_ms() - static_cast<int64_t>(start_time_s_ * 1000)) / 1000;
    const InterfaceConfig& ic = iface_ ? *iface_ : adopted_iface_;
    if (ic.private_key) {
        // Derived once per private key (an apply may change it).
        if (!public_key_ || public_key_->first != *ic.private_key) {
            auto pub = public_key_of(*ic.private_key);
            public_key_ = {*ic.private_key, pub ? pub->base64() : ""};
        }
        st.public_key = public_key_->second;
    }
    st.listen_port = ic.listen_port.value_or(0);
    if (order_) st.datapath_order = order_status(order_->last());
    if (health_) {
        WgHealthStatus h = health_->status();
        st.wireguard = to_string(h.state);
        st.wireguard_since = h.since;
        st.wireguard_error = h.error;
    } else {
        st.wireguard = "unchecked";  // kernel WireGuard: nothing to stop, device not watched
    }
    if (!req.detail) return ControlReply::raw(status_summary_text(st));
    // Filtered: a handful of peers, whatever the table's size.
    const size_t hint = req.filter.empty() ? mgr_->size() : 16;
    return ControlReply::raw(status_reply_text(st, hint, mgr_->peer_statuses(req.filter)));
}

nlohmann::json Agent::trace_reply(const TraceRequest& r) {
    nlohmann::json reply{{"ok", true}};
    std::string ip_key;
    if (r.filter.ip) {
        // The peer that routes the address now: the CLI filters live events by its key.
        PeerFilter f;
        f.ip = r.filter.ip;
        PeerStatus s;
        if (!mgr_->peer_statuses(f)(s))
            throw std::invalid_argument("no peer routes " + r.filter.ip->str());
        ip_key = s.public_key;
        reply["peer"] = ip_key;
    }
    if (!r.last && !r.since_ms) return reply;
    // The kept events, oldest first: the last N that match, or those since a time.
    const std::vector<StampedTraceEvent> kept = trace_ring_.snapshot();
    std::vector<nlohmann::json> out;
    for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
        if (r.since_ms && it->unix_ms < *r.since_ms) break;
        if (r.last && out.size() >= *r.last) break;
        nlohmann::json ev = trace_json(it->event, it->unix_ms);
        if (trace_matches(r.filter, ip_key, ev)) out.push_back(std::move(ev));
    }
    std::reverse(out.begin(), out.end());
    reply["events"] = std::move(out);
    return reply;
}

nlohmann::json Agent::peer_wake(const PeerWakeRequest& r) {
    size_t woken = 0;
    if (r.group) {
        woken = mgr_->wake_group(*r.group);
        return nlohmann::json{{"ok", true}, {"woken", woken}};
    }
    // Every key first: an unknown one refuses the request before any peer wakes.
    for (const WgKey& k : r.public_keys)
        if (!mgr_->find(k)) throw std::invalid_argument("unknown peer " + k.base64());
    for (const WgKey& k : r.public_keys) woken += mgr_->wake(k) ? 1 : 0;
    return nlohmann::json{{"ok", true}, {"woken", woken}};
}

namespace {

// The level in the words `set log-level` takes (kLogLevelNames: "warn" where spdlog says
// "warning"); spdlog's own past them (critical, off), which no request sets.
std::string log_level_word(spdlog::level::level_enum level) {
    const auto i = static_cast<size_t>(level);
    if (i < std::size(kLogLevelNames)) return to_string(static_cast<LogLevel>(i));
    const auto name = spdlog::level::to_string_view(level);
    return std::string(name.data(), name.size());
}

}  // namespace

nlohmann::json Agent::set_request(const SetRequest& r) {
    if (r.log_level) {
        set_log_level(*r.log_level);
        spdlog::info("log level {}", to_string(*r.log_level));
    }
    if (r.inactivity_threshold) mgr_->set_inactivity_threshold(*r.inactivity_threshold);
    return nlohmann::json{
        {"ok", true},
        {"log_level", log_level_word(spdlog::get_level())},
        {"inactivity_threshold_ms", static_cast<uint64_t>(mgr_->inactivity_threshold().count())}};
}

nlohmann::json Agent::apply_request(const ApplyRequest& r) {
    // With config_text, the file the client read it from: re-read on SIGHUP.
    std::optional<std::string> file = r.config_path ? r.config_path : r.file;
    WgQuickConfig cfg;
    try {
        // A path the agent reads itself goes through the bounded reader: regular
        // files only, so a FIFO or /dev/zero is refused without blocking the loop.
        cfg = r.config_text
                  ? parse_wg_quick(*r.config_text, printable(r.source.value_or("control")))
                  : load_wg_quick(*r.config_path);
    } catch (const ConfigError& e) {
        throw std::invalid_argument(e.what());  // "file:line: problem" as it is
    }
    for (const auto& w : cfg.warnings) spdlog::warn("{}", w);
    nlohmann::json reply = apply_config(std::move(cfg), r.dry_run);
    if (file && !r.dry_run) cfg_path_ = file;
    return reply;
}

namespace {

nlohmann::json apply_reply(const MapDiff& d, bool dry_run, double ms) {
    return nlohmann::json{{"ok", true},
                          {"applied", !dry_run},
                          {"diff",
                           {{"added", d.added},
                            {"removed", d.removed},
                            {"changed", d.changed},
                            {"unchanged", d.unchanged}}},
                          {"ms", ms}};
}

}  // namespace

nlohmann::json Agent::apply_config(WgQuickConfig cfg, bool dry_run) {
    const uint64_t start = monotonic_ns();
    cfg = with_fleet_peers(std::move(cfg));
    std::vector<IpPrefix> after = routed_prefixes(allowed_ips_of(cfg), false, opts_.interface);
    // The old map's prefixes: from the peers themselves, not a second copy of every one.
    std::vector<IpPrefix> before;
    if (!dry_run) before = routed_prefixes(mgr_->allowed_ips(), false, "");
    std::vector<PeerSpec> specs = specs_from_config(std::move(cfg));
    // Device settings only when they change: WireGuard would keep sessions anyway,
    // but an unchanged map should be a no-op all the way down.
    const InterfaceConfig* old = iface_ ? &*iface_ : nullptr;
    DeviceUpdate update = changed_settings(cfg.iface, old);
    const bool update_changes_source = update.listen_port || update.fwmark;
    claim_listen_port(update, dry_run);
    if (!dry_run) store_both_maps(specs);
    MapDiff d = mgr_->apply(std::move(specs), std::move(update), dry_run);
    if (!dry_run) {
        maps_.added += d.added;
        maps_.removed += d.removed;
        maps_.changed += d.changed;
        fault_point("apply:wireguard");
        trim_state_file();
        if (update_changes_source) tell_udp_wireguard_source();
        // Routes through the interface follow the peers' allowed IPs, as at start.
        sync_routes(before, after, true);
        fault_point("apply:routes");
        add_new_addresses(opts_.interface, old, cfg.iface);
        set_changed_mtu(opts_.interface, old, cfg.iface);
        iface_ = cfg.iface;
        give_back_memory();
    }
    const uint64_t took = monotonic_ns() - start;
    if (!dry_run) maps_.duration.record(took);
    double ms = static_cast<double>(took) / 1e6;
    spdlog::info("{}network map: {} added, {} removed, {} changed, {} unchanged ({:.1f} ms)",
                 dry_run ? "dry run of a " : "", d.added, d.removed, d.changed, d.unchanged, ms);
    return apply_reply(d, dry_run, ms);
}

void Agent::claim_listen_port(const DeviceUpdate& update, bool dry_run) {
    if (!udp_ || !update.listen_port) return;
    // WireGuard could not bind it: a listener of an idle peer holds that port.
    if (udp_->port_in_use(*update.listen_port))
        throw std::runtime_error("ListenPort " + std::to_string(*update.listen_port) +
                                 " is held by an idle peer's UDP listener on loopback; "
                                 "choose another port (nothing was changed)");
    if (!dry_run) udp_->reserve_port(*update.listen_port);
}

void Agent::store_both_maps(const std::vector<PeerSpec>& specs) {
    // Events for peers that are about to change are handled under the old map.
    if (activity_) activity_->consume();
    if (udp_) udp_->consume();
    if (!mgr_->lazy() && !mgr_->has_datapath()) return;
    // A crash in the middle must not lose endpoints of idle peers.
    std::vector<PeerSpec> all = mgr_->specs();
    all.insert(all.end(), specs.begin(), specs.end());
    store_endpoints(all, "the map was not applied");
    fault_point("apply:stored");
}

void Agent::trim_state_file() {
    if (!mgr_->has_datapath()) return;
    // The file already holds every endpoint of the old and the new map: a failure now
    // loses nothing, so the applied map stands.
    try {
        save_peer_state(state_path_, mgr_->specs());
    } catch (const std::exception& e) {
        spdlog::warn("state file not trimmed to the new map: {} (it still holds every endpoint)",
                     e.what());
    }
}

void Agent::reload() {
    notifier_.reloading();
    reload_settings();
    reload_map();
    notifier_.ready(service_status());
}

void Agent::reload_map() {
    if (!cfg_path_) {
        spdlog::info(
            "SIGHUP: no network map to re-read (started without -c; nbagent apply -c FILE "
            "gives one)");
        return;
    }
    try {
        WgQuickConfig cfg = load_wg_quick(*cfg_path_);
        for (const auto& w : cfg.warnings) spdlog::warn("{}", w);
        apply_config(std::move(cfg), false);
        ++maps_.reloaded;
    } catch (const ConfigError& e) {
        // The running map stays as it is.
        ++maps_.failed;
        spdlog::error("SIGHUP: {} (nothing changed)", e.what());
    } catch (const std::exception& e) {
        ++maps_.failed;
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

}  // namespace nb::engine
