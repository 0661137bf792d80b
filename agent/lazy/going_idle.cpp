// LazyManager: the way back to Idle. A failed wake is counted and backs off; failed and
// inactive peers lose their endpoint and session in WireGuard (remove and re-add) while
// the datapath holds their packets again. Inactivity that keeps sessions is in
// kept_sessions.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <iterator>

#include "agent/lazy/lazy_manager.hpp"

namespace nb {

std::chrono::milliseconds LazyManager::backoff_after(uint32_t failures) const {
    int shift = static_cast<int>(std::min<uint32_t>(failures - 1, 20));
    return std::min(opts_.backoff_max, opts_.backoff_base * (int64_t{1} << shift));
}

void LazyManager::note_failure(ManagedPeer& p, WakeFailure cause, const std::string& error) {
    WakeState& w = p.w_mut();
    if (w.undo_pending) return;  // counted already; only making it Idle is retried
    w.undo_pending = true;
    ++counters_.failure(cause);
    ++w.failures;
    p.proven = false;
    auto backoff = backoff_after(w.failures);
    const uint64_t now = clock_now();
    if (p.state == PeerState::Connecting) phases_.failed.record(elapsed_ns(w.trigger_ns, now));
    w.phase_ns = 0;
    w.retry_after_ns = now + to_ns(backoff);
    w.last_error = error;
    // Built once per cause, not per failure: a sweep fails thousands.
    static const auto kinds = [] {
        std::array<std::string, std::size(kWakeFailureNames)> k;
        for (const auto& n : kWakeFailureNames)
            k[static_cast<size_t>(n.value)] =
                std::string("peers failed to connect (") + n.name + ")";
        return k;
    }();
    if (failure_log_.admit(kinds[static_cast<size_t>(cause)], now))
        spdlog::warn("peer {} failed to connect ({} in a row): {}; no new attempt for {}",
                     p.key.base64(), w.failures, error, format_duration(backoff));
}

void LazyManager::fail_peers(const std::vector<uint32_t>& ids) {
    try {
        idle_peers(ids, "", true);
    } catch (const std::exception& e) {
        // WireGuard did not take the remove and re-add (a daemon too busy to answer):
        // the peers stay Connecting, holding, and the next tick tries again in one
        // request. An exception here would stop the tick for every other peer.
        spdlog::error("making {} failed peers idle: {}; trying again", ids.size(), e.what());
        uint64_t again = clock_now() + to_ns(std::chrono::milliseconds(1000));
        for (uint32_t id : ids) {
            ManagedPeer& p = table_[id];
            if (!p.in_use || p.state != PeerState::Connecting) continue;
            p.w_mut().deadline_ns = again;
            connecting_.push_back(id);
        }
    }
}

void LazyManager::fail_connect(ManagedPeer& p, WakeFailure cause, const std::string& error) {
    note_failure(p, cause, error);
    fail_peers({p.id});
}

void LazyManager::drop_held(ManagedPeer& p) {
    if (!p.wake || p.wake->held.empty()) return;
    auto n = static_cast<uint32_t>(p.wake->held.size());
    count_drop(p, n);
    std::vector<std::vector<uint8_t>>().swap(p.wake->held);
    if (dp_) dp_->release_pending(p.id, n);
}

void LazyManager::forget_wake(ManagedPeer& p) {
    // A backoff still running is remembered; anything else an idle peer needs is inline.
    if (p.wake && p.wake->failures == 0 && p.wake->retry_after_ns == 0) p.wake.reset();
}

void LazyManager::idle_peers(const std::vector<uint32_t>& ids, const std::string& reason,
                             bool failed) {
    const uint64_t start = clock_now();
    // Hold first, so nothing reaches WireGuard between clearing the endpoint and the
    // program knowing the peer is idle.
    if (dp_)
        for (uint32_t id : ids) dp_->set_mode(id, SlotMode::Hold);
    // WireGuard has no "unset endpoint": remove and re-add (allowed IPs kept, and with
    // them every route through the interface) clears endpoint, keepalive and session.
    DeviceUpdate u;
    for (uint32_t id : ids) {
        const ManagedPeer& p = table_[id];
        if (p.state == PeerState::Idle) continue;
        u.peers.push_back(remove_peer_op(p.key));
        PeerUpdate op = readd_peer_op(p.key, p.preshared_key(), p.allowed_ips);
        if (dp_) op.endpoint = dp_->idle_endpoint(id);
        u.peers.push_back(std::move(op));
    }
    if (!u.peers.empty()) {
        try {
            wg_.set_device(u);
        } catch (...) {
            // WireGuard not answering or gone: the peers are Idle all the same (the
            // datapath holds them), and WireGuard is made to agree when it is back.
            if (wg_.available()) {
                if (dp_) {
                    for (uint32_t id : ids)
                        if (table_[id].state == PeerState::Connected)
                            dp_->set_mode(id, SlotMode::Pass);
                }
                throw;
            }
        }
    }
    uint64_t now = clock_now();
    if (!u.peers.empty()) phases_.going_idle.record(elapsed_ns(start, now));
    std::vector<uint32_t> talked_ids;
    for (uint32_t id : ids) {
        ManagedPeer& p = table_[id];
        // The ingress program passes a peer that talks to us; if it did during the
        // update above, the remote is active but WireGuard just lost the session.
        bool talked = dp_ && dp_->set_mode(id, SlotMode::Hold) == SlotMode::Pass;
        // WireGuard discards what we replayed into it for a handshake that never came.
        if (failed && p.w().awaiting_handshake) count_drop(p, p.w().replayed);
        jobs_.erase(p.w().job_id);
        p.idle_since_ns = now;
        drop_held(p);
        if (p.wake) {
            WakeState& w = *p.wake;
            w.undo_pending = false;
            w.job_id = 0;
            w.awaiting_handshake = false;
            w.endpoint.reset();
            w.wg_figures = {};  // the re-add above reset WireGuard's
            if (!failed) w.last_error.clear();
        }
        if (p.state != PeerState::Idle)
            transition(p, PeerState::Idle,
                       failed ? "failed: " + p.w().last_error + "; retry after " +
                                    format_duration(backoff_after(p.w().failures))
                              : reason);
        if (!failed) forget_wake(p);
        if (talked) talked_ids.push_back(id);
    }
    // Only once the whole batch is Idle: a wake starts the Idle members of the peer's
    // groups, and a group idles in one batch, so members later in it would be missed.
    for (uint32_t id : talked_ids)
        if (table_[id].state == PeerState::Idle) start_connect(table_[id], now, WakeReason::Remote);
}

}  // namespace nb
