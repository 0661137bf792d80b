// LazyManager: a wake's second half. The connector's answer gives WireGuard the peer's
// endpoint (in one request for a batch of answers), the held packets are replayed in
// order, and the first reply or WireGuard's handshake time confirms the peer.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/lazy/lazy_manager.hpp"

namespace nb {

ManagedPeer* LazyManager::connect_result(const ConnectPool::Completion& done) {
    auto it = jobs_.find(done.job_id);
    if (it == jobs_.end()) return nullptr;
    ManagedPeer* p = by_id(it->second);
    jobs_.erase(it);
    // The peer may have been made idle, woken again or removed while the connector ran.
    if (!p || p->state != PeerState::Connecting || p->w().job_id != done.job_id) return nullptr;
    WakeState& w = p->w_mut();
    w.job_id = 0;
    if (!done.result.endpoint) {
        fail_connect(*p, WakeFailure::Connector,
                     done.result.error.empty() ? "connector gave no endpoint" : done.result.error);
        return nullptr;
    }
    w.phase_ns = clock_now();
    phases_.connector.record(elapsed_ns(w.trigger_ns, w.phase_ns));
    return p;
}

void LazyManager::on_connect_done(const ConnectPool::Completion& done) {
    on_connect_batch(std::span(&done, 1));
}

void LazyManager::on_connect_batch(std::span<const ConnectPool::Completion> done) {
    std::vector<std::pair<uint32_t, SockAddr>> ready;
    for (const auto& d : done)
        if (ManagedPeer* p = connect_result(d)) ready.emplace_back(p->id, *d.result.endpoint);
    // Proven peers first, in a request of their own: a real peer's endpoint must not wait
    // for a crowd of wakes that may never answer (a sweep's).
    auto unproven = std::stable_partition(ready.begin(), ready.end(),
                                          [this](const auto& r) { return table_[r.first].proven; });
    set_endpoints({ready.begin(), unproven});
    set_endpoints({unproven, ready.end()});
}

void LazyManager::set_endpoints(std::span<const std::pair<uint32_t, SockAddr>> ready) {
    if (ready.size() == 1) set_endpoint(table_[ready[0].first], ready[0].second);
    if (ready.size() <= 1) return;
    // One request for all: a daemon busy with a storm of wakes answers each request
    // slowly, and per peer those waits would add up while every other event waits.
    DeviceUpdate u;
    for (const auto& [id, ep] : ready) push_connect_ops(u, table_[id], ep);
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        // Which peer it was is not known (wireguard-go applies lines in order): one by
        // one, each failing on its own. Setting an endpoint twice is harmless.
        spdlog::warn("setting {} endpoints in one request: {}; setting them one by one",
                     ready.size(), e.what());
        for (const auto& [id, ep] : ready)
            if (table_[id].state == PeerState::Connecting && table_[id].w().job_id == 0 &&
                !table_[id].w().awaiting_handshake)
                set_endpoint(table_[id], ep);
        return;
    }
    for (const auto& [id, ep] : ready) endpoint_applied(table_[id], ep);
}

void LazyManager::set_endpoint(ManagedPeer& p, const SockAddr& ep) {
    DeviceUpdate u;
    push_connect_ops(u, p, ep);
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        fail_connect(p, WakeFailure::WireGuard, std::string("setting endpoint: ") + e.what());
        return;
    }
    endpoint_applied(p, ep);
}

bool LazyManager::peer_moved(const WgKey& key, const SockAddr& ep) {
    ManagedPeer* p = table_.find(key);
    if (!p) throw std::invalid_argument("unknown peer " + key.base64());
    if (p->state != PeerState::Connected || p->w().endpoint == ep) return false;
    PeerUpdate op;
    op.public_key = p->key;
    op.update_only = true;
    op.endpoint = ep;
    DeviceUpdate u;
    u.peers.push_back(std::move(op));
    wg_.set_device(u);
    p->w_mut().endpoint = ep;
    return true;
}

void LazyManager::endpoint_applied(ManagedPeer& p, const SockAddr& ep) {
    WakeState& w = p.w_mut();
    w.endpoint = ep;
    w.forget_at_ns = 0;  // push_connect_ops dropped a kept session
    const uint64_t set_ns = clock_now();
    if (w.phase_ns) phases_.endpoint.record(elapsed_ns(w.phase_ns, set_ns));
    w.phase_ns = set_ns;
    if (!dp_) {
        confirm(p, w.trigger_reason);  // eager without programs: nothing to watch
        return;
    }
    // The held packets go to WireGuard now (it queues them and starts its handshake);
    // newer ones are held until the first reply or the handshake time proves it, and
    // then the peer counts as Connected.
    w.awaiting_handshake = true;
    w.endpoint_set_ns = set_ns;
    w.replayed = 0;
    w.replayed_bytes = 0;
    w.handshake_seen_ns = 0;
    dp_->endpoint_set(p.id, ep);
    // Its handshake is due within a round trip: poll for it at the fast pace from the next
    // turn of the loop (awaiting_proof), not at the next slow tick.
    fast_poll_ = true;
    release_hold(p, SlotMode::Confirm);
    w.phase_ns = clock_now();
    phases_.replay.record(elapsed_ns(set_ns, w.phase_ns));
}

void LazyManager::confirm(ManagedPeer& p, const std::string& reason) {
    uint64_t now = clock_now();
    WakeState& w = p.w_mut();
    if (p.state == PeerState::Connecting) {
        // Only a wake whose packets were replayed waited for a first reply.
        if (w.awaiting_handshake && w.phase_ns)
            phases_.first_reply.record(elapsed_ns(w.phase_ns, now));
        phases_.total.record(elapsed_ns(w.trigger_ns, now));
    }
    w.phase_ns = 0;
    w.awaiting_handshake = false;
    w.forget_at_ns = 0;  // a remote that talked to a kept session keeps it
    w.failures = 0;
    w.retry_after_ns = 0;
    w.last_error.clear();
    w.connected_ns = now;
    p.last_wake_ms = now > w.trigger_ns ? static_cast<float>(now - w.trigger_ns) / 1e6f : 0.0f;
    // Packets held while the handshake was unproven go first; the program keeps
    // newer ones back until they have.
    release_hold(p, SlotMode::Pass);
    transition(p, PeerState::Connected, reason);
    if (w.prewarm) end_prewarm(p);
}

void LazyManager::end_prewarm(ManagedPeer& p) {
    p.w_mut().prewarm = false;
    if (p.keepalive) return;  // its own keepalive stays
    PeerUpdate op;
    op.public_key = p.key;
    op.update_only = true;
    op.persistent_keepalive = 0;
    DeviceUpdate u;
    u.peers.push_back(op);
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        // Harmless but for the traffic: the next idle (remove and re-add) clears it.
        spdlog::warn("peer {}: turning off the wake's keepalive: {}", p.key.base64(), e.what());
    }
}

void LazyManager::release_hold(ManagedPeer& p, SlotMode mode) {
    if (!dp_) return;
    // Order matters: the program must let re-injected packets through before they
    // are sent, and keeps holding new ones until every held one has gone out.
    dp_->set_mode(p.id, mode);
    if (!p.wake) return;
    for (const auto& packet : p.wake->held) replay(p, packet);
    std::vector<std::vector<uint8_t>>().swap(p.wake->held);  // give the memory back
}

void LazyManager::replay(ManagedPeer& p, std::span<const uint8_t> packet) {
    bool sent = false;
    try {
        sent = sink_->inject(packet);
    } catch (const std::exception& e) {
        spdlog::warn("re-injecting a packet for {}: {}", p.key.base64(), e.what());
    }
    if (!sent)
        count_drop(p);
    else
        ++counters_.packets_replayed;
    if (sent && p.wake && p.wake->awaiting_handshake) {
        ++p.wake->replayed;
        p.wake->replayed_bytes += packet.size();
    }
    // Only now, with the packet in WireGuard's queue (or gone), may newer packets pass.
    dp_->release_pending(p.id, 1);
}

}  // namespace nb
