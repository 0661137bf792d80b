// LazyManager when WireGuard was not there for a while: lost (every peer goes Idle in the
// agent's books), or answering again after it did not (WireGuard is read back and made to
// agree with the agent). The manager's state always wins: it is what the datapath does
// with each peer's packets.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "agent/lazy/lazy_manager.hpp"
#include "agent/lazy/state_file.hpp"

namespace nb {

namespace {

std::vector<IpPrefix> sorted(std::vector<IpPrefix> v) {
    std::sort(v.begin(), v.end());
    return v;
}

// Whether WireGuard has `have` where the agent wants `want` (none: no endpoint at all).
bool same(const std::optional<SockAddr>& have, const std::optional<SockAddr>& want) {
    if (!have || !want) return have.has_value() == want.has_value();
    return *have == *want;
}

// What WireGuard has otherwise than the agent for a peer it keeps (in place, sessions
// stay), or none when they agree.
std::optional<PeerUpdate> drift_op(const ManagedPeer& p, const WgPeer& wp, bool live) {
    PeerUpdate op;
    op.public_key = p.key;
    op.update_only = true;
    bool any = false;
    if (live) {
        // A roamed endpoint is WireGuard's business; none at all is not.
        const bool none = !wp.endpoint || is_udp_listener_endpoint(wp.endpoint->str());
        if (none && p.w().endpoint) {
            op.endpoint = p.w().endpoint;
            any = true;
        }
        if (wp.persistent_keepalive != p.keepalive) {
            op.persistent_keepalive = p.keepalive;
            any = true;
        }
    }
    if (sorted(wp.allowed_ips) != sorted(p.allowed_ips.to_vector())) {
        op.replace_allowed_ips = true;
        op.allowed_ips = p.allowed_ips.to_vector();
        any = true;
    }
    if (wp.preshared_key != p.preshared_key()) {
        op.preshared_key = p.preshared_key().value_or(WgKey{});  // all zero: none
        any = true;
    }
    if (!any) return std::nullopt;
    return op;
}

}  // namespace

void LazyManager::wireguard_lost(const std::string& reason) {
    // Its peers, endpoints and sessions went with it: nobody is connected, and there is
    // nothing to tell it. When it is back, reconcile() installs every peer Idle.
    const std::string why = "WireGuard lost: " + reason;
    uint64_t now = clock_now();
    for (auto& p : table_) {
        if (!p.in_use || p.state == PeerState::Idle) continue;
        if (dp_) dp_->set_mode(p.id, SlotMode::Hold);
        jobs_.erase(p.w().job_id);
        p.idle_since_ns = now;
        drop_held(p);
        WakeState& w = p.w_mut();
        if (w.awaiting_handshake) count_drop(p, w.replayed);  // in WireGuard's queue
        w.job_id = 0;
        w.awaiting_handshake = false;
        w.undo_pending = false;
        w.endpoint.reset();
        transition(p, PeerState::Idle, why);
        forget_wake(p);
    }
}

ReconcileCounts LazyManager::reconcile(const WgDevice& dev, DeviceUpdate update) {
    ReconcileCounts n;
    std::unordered_map<WgKey, const WgPeer*, WgKeyHash> have;
    have.reserve(dev.peers.size());
    for (const auto& wp : dev.peers) {
        have.emplace(wp.public_key, &wp);
        // Not ours: a map that was being applied when WireGuard stopped answering.
        if (!table_.find(wp.public_key)) {
            update.peers.push_back(remove_peer_op(wp.public_key));
            ++n.removed;
        }
    }
    for (const auto& p : table_) {
        if (!p.in_use) continue;
        auto it = have.find(p.key);
        reconcile_peer(p, it == have.end() ? nullptr : it->second, update, n);
    }
    // Device settings only where they differ: a listen port set again rebinds.
    if (update.private_key && dev.private_key == update.private_key) update.private_key.reset();
    if (update.listen_port && dev.listen_port == *update.listen_port) update.listen_port.reset();
    if (update.fwmark && dev.fwmark == *update.fwmark) update.fwmark.reset();
    n.device = update.private_key || update.listen_port || update.fwmark;
    if (update.peers.empty() && !n.device) return n;
    wg_.set_device(update);
    return n;
}

void LazyManager::reconcile_peer(const ManagedPeer& p, const WgPeer* wp, DeviceUpdate& update,
                                 ReconcileCounts& n) const {
    // WireGuard has an endpoint and keepalive only for peers the agent gave them to.
    const bool live = p.state == PeerState::Connected ||
                      (p.state == PeerState::Connecting && p.w().awaiting_handshake);
    // Asked only for idle peers: the UDP engine opens a listener to answer.
    const std::optional<SockAddr> idle_ep = dp_ && !live ? dp_->idle_endpoint(p.id) : std::nullopt;
    if (!wp) {
        // Back the way it was: a new device has none of them.
        PeerUpdate op = readd_peer_op(p.key, p.preshared_key(), p.allowed_ips);
        op.endpoint = live ? p.w().endpoint : idle_ep;
        if (live && p.w().endpoint) op.persistent_keepalive = p.keepalive;
        update.peers.push_back(std::move(op));
        ++n.added;
        return;
    }
    if (!live && stray_session(p, *wp, idle_ep)) {
        update.peers.push_back(remove_peer_op(p.key));
        PeerUpdate op = readd_peer_op(p.key, p.preshared_key(), p.allowed_ips);
        op.endpoint = idle_ep;
        update.peers.push_back(std::move(op));
        ++n.fixed;
        return;
    }
    if (auto op = drift_op(p, *wp, live)) {
        update.peers.push_back(std::move(*op));
        ++n.fixed;
    }
}

bool LazyManager::stray_session(const ManagedPeer& p, const WgPeer& wp,
                                const std::optional<SockAddr>& idle_ep) const {
    // An endpoint, keepalive or session the agent did not leave there: an endpoint
    // request that timed out and was applied late, or an idle that never was.
    bool stray =
        !same(wp.endpoint, idle_ep) || wp.persistent_keepalive != 0 || wp.last_handshake_sec != 0;
    // Unless the remote woke the peer meanwhile: the ingress program passes it already,
    // and its report makes it Connected.
    if (stray && p.state == PeerState::Idle && dp_ && dp_->sees_traffic() &&
        dp_->current_mode(p.id) == SlotMode::Pass)
        stray = false;
    return stray;
}

}  // namespace nb
