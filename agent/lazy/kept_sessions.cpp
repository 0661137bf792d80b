// Sessions kept past Idle, and sessions found live at start.
//
// When this side idles a peer, the remote may still hold a valid session for up to
// REJECT_AFTER_TIME (180 s) after the last handshake. Were WireGuard to forget the
// session at once, the remote's next data would arrive under a receiver index nobody
// knows and be dropped until its own re-handshake (KEEPALIVE + REKEY_TIMEOUT, ~15 s): a
// silent outage after every idle. So a peer idled for inactivity becomes Idle at once
// (slot HOLD: our packets to it wake it as usual; keepalive off: WireGuard sends nothing
// on its own), but WireGuard keeps its endpoint and session until the remote's copy must
// have expired too. Meanwhile the remote's packets decrypt, the ingress program passes
// them and reports the remote talking, and the peer is Connected again with reason
// "remote", without a packet lost. Only then is the peer removed and re-added.
//
// The same hole opens at every start: a peer with a live session when the agent starts is
// adopted Connected and its WireGuard peer left as it is, so a restart costs an active
// remote nothing.
#include <algorithm>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "agent/lazy/lazy_manager.hpp"

namespace nb {

namespace {

// Seconds since WireGuard's last handshake with the peer, or -1 for never.
int64_t handshake_age_sec(const WgPeer& wp, int64_t wall_now) {
    if (!wp.last_handshake_sec) return -1;
    return wall_now > wp.last_handshake_sec ? wall_now - wp.last_handshake_sec : 0;
}

}  // namespace

void LazyManager::find_live_sessions(std::vector<Prepared>& fresh, const WgDevice& current) const {
    const int64_t wall_now = std::time(nullptr);
    std::unordered_map<WgKey, const WgPeer*, WgKeyHash> live;
    for (const auto& wp : current.peers) {
        const int64_t age = handshake_age_sec(wp, wall_now);
        if (wp.endpoint && age >= 0 && age < kSessionLifetime.count())
            live.emplace(wp.public_key, &wp);
    }
    size_t n = 0;
    for (auto& f : fresh) {
        auto it = live.find(f.peer.key);
        if (it == live.end()) continue;
        f.live = true;
        f.connect_now = false;
        // The endpoint WireGuard has now: where the remote talks from (it may have roamed).
        f.peer.w_mut().endpoint = it->second->endpoint;
        ++n;
    }
    if (n) spdlog::info("{} peers have a live WireGuard session: kept, and Connected", n);
}

void LazyManager::push_connect_ops(DeviceUpdate& u, const ManagedPeer& p,
                                   const SockAddr& ep) const {
    PeerUpdate op;
    if (p.w().forget_at_ns) {
        u.peers.push_back(remove_peer_op(p.key));
        op = readd_peer_op(p.key, p.preshared_key(), p.allowed_ips);
    } else {
        op.public_key = p.key;
        op.update_only = true;
    }
    op.endpoint = ep;
    // Setting a keepalive makes WireGuard send one at once, and so start its handshake.
    op.persistent_keepalive = p.keepalive ? p.keepalive : p.w().prewarm ? kPrewarmKeepalive : 0;
    u.peers.push_back(std::move(op));
}

void LazyManager::idle_keeping_sessions(const std::vector<uint32_t>& ids, const std::string& reason,
                                        uint64_t now_ns) {
    const uint64_t start = clock_now();
    // Hold first: from now on our packets to these peers wake them as for any Idle peer.
    for (uint32_t id : ids) dp_->set_mode(id, SlotMode::Hold);
    // Keepalives off: they would renew the session and the NAT mapping we let go.
    DeviceUpdate u;
    for (uint32_t id : ids) {
        const ManagedPeer& p = table_[id];
        if (p.state == PeerState::Idle || !p.keepalive) continue;
        PeerUpdate op;
        op.public_key = p.key;
        op.update_only = true;
        op.persistent_keepalive = 0;
        u.peers.push_back(std::move(op));
    }
    if (!u.peers.empty()) {
        try {
            wg_.set_device(u);
        } catch (...) {
            for (uint32_t id : ids)
                if (table_[id].state == PeerState::Connected) dp_->set_mode(id, SlotMode::Pass);
            throw;
        }
    }
    const uint64_t now = clock_now();
    if (std::any_of(ids.begin(), ids.end(),
                    [this](uint32_t id) { return table_[id].state != PeerState::Idle; }))
        phases_.going_idle.record(elapsed_ns(start, now));
    std::vector<uint32_t> talked_ids;
    for (uint32_t id : ids) {
        ManagedPeer& p = table_[id];
        if (p.state == PeerState::Idle) continue;
        // The remote talked while we switched: the program passed it and flipped the slot.
        const bool talked = dp_->set_mode(id, SlotMode::Hold) == SlotMode::Pass;
        WakeState& w = p.w_mut();
        jobs_.erase(w.job_id);
        w.job_id = 0;
        w.awaiting_handshake = false;
        w.forget_at_ns = now_ns + to_ns(kSessionLifetime);
        p.idle_since_ns = now;
        drop_held(p);
        transition(p, PeerState::Idle, reason);
        kept_.push_back(id);
        if (talked) talked_ids.push_back(id);
    }
    // The session is still there, so a remote that talked is simply Connected again.
    for (uint32_t id : talked_ids) on_rx_wake(id, now);
}

void LazyManager::forget_kept_sessions(uint64_t now_ns) {
    std::vector<uint32_t> due, later;
    for (uint32_t id : kept_) {
        const ManagedPeer* p = by_id(id);
        // Woken, removed, or already forgotten since: nothing left to do for it.
        if (!p || p->state != PeerState::Idle || !p->w().forget_at_ns) continue;
        (now_ns >= p->w().forget_at_ns ? due : later).push_back(id);
    }
    kept_.swap(later);
    if (due.empty()) return;
    // The remote may have renewed the session since (its keepalives rekey it when it
    // initiated): then its copy lives on, and so must ours.
    WgDevice dev;
    try {
        dev = wg_.get_device();
    } catch (const WgError& e) {
        spdlog::warn("reading handshake times of {} idle peers: {}; trying again", due.size(),
                     e.what());
        kept_.insert(kept_.end(), due.begin(), due.end());
        return;
    }
    std::unordered_map<WgKey, int64_t, WgKeyHash> age;
    const int64_t wall_now = std::time(nullptr);
    for (const auto& wp : dev.peers) age.emplace(wp.public_key, handshake_age_sec(wp, wall_now));
    note_wg_figures(dev, now_ns);
    dev = WgDevice{};
    DeviceUpdate u;
    std::vector<uint32_t> forget;
    for (uint32_t id : due) {
        ManagedPeer& p = table_[id];
        auto it = age.find(p.key);
        const int64_t a = it == age.end() ? -1 : it->second;
        if (a >= 0 && a < kSessionLifetime.count()) {
            p.w_mut().forget_at_ns = now_ns + to_ns(kSessionLifetime - std::chrono::seconds(a));
            kept_.push_back(id);
            continue;
        }
        u.peers.push_back(remove_peer_op(p.key));
        PeerUpdate op = readd_peer_op(p.key, p.preshared_key(), p.allowed_ips);
        if (dp_) op.endpoint = dp_->idle_endpoint(id);
        u.peers.push_back(std::move(op));
        forget.push_back(id);
    }
    if (forget.empty()) return;
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        spdlog::warn("forgetting the sessions of {} idle peers: {}; trying again", forget.size(),
                     e.what());
        kept_.insert(kept_.end(), forget.begin(), forget.end());
        return;
    }
    spdlog::debug("{} idle peers' sessions expired: WireGuard forgot them", forget.size());
    const uint64_t now = clock_now();
    for (uint32_t id : forget) {
        ManagedPeer& p = table_[id];
        p.w_mut().forget_at_ns = 0;
        p.w_mut().endpoint.reset();
        p.w_mut().wg_figures = {};  // re-added: WireGuard's start from zero
        p.idle_since_ns = now;
        // A remote that talked during the update: WireGuard just lost that session.
        const bool talked = dp_ && dp_->set_mode(id, SlotMode::Hold) == SlotMode::Pass;
        forget_wake(p);
        if (talked) start_connect(p, now, WakeReason::Remote);
    }
}

}  // namespace nb
