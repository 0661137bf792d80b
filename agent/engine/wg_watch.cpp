// WireGuard lost and answering again (WgHealth's events): peers made Idle while it
// is gone, the device adopted or made again when it is back.
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
                dp_->attach(ifindex_, base_status_.attach_mode.value_or(opts_.attach_mode));
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
    DeviceUpdate device = changed_settings(ic, nullptr);
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

}  // namespace nb::engine
