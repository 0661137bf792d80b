// LazyManager: liveness, driven by tick(). Wake deadlines and bulk work in chunks;
// handshake proof (a read of WireGuard's handshake times, for peers whose first reply
// the programs cannot report); inactivity (back to Idle); and peers whose reports the
// ring buffer lost.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_map>

#include "agent/lazy/lazy_manager.hpp"
#include "agent/wg/wire_sizes.hpp"
#include "base/memory.hpp"

namespace nb {

namespace {

// When to read WireGuard again after a read that took `took_ns`: a dump costs in
// proportion to all peers (a million under emulation take about 27 s), so at least
// `every` later and at most a fifth of the time on it.
uint64_t next_read_ns(uint64_t now_ns, std::chrono::milliseconds every, uint64_t took_ns) {
    return now_ns + std::max(to_ns(every), 5 * took_ns);
}

// Status's copy of what WireGuard says of a peer with a wake state (others are zeros).
void keep_figures(ManagedPeer& p, const WgPeer& wp, uint64_t now_ns) {
    if (p.wake) p.wake->wg_figures = {wp.rx_bytes, wp.tx_bytes, wp.last_handshake_sec, now_ns};
}

}  // namespace

std::chrono::milliseconds LazyManager::tick_interval() const {
    // Packets wait for a handshake only polling can prove (one-way traffic): poll often.
    // Bulk work left for later turns of the loop goes on soon too.
    return fast_poll_ || backlog_ ? opts_.handshake_poll_fast : std::chrono::milliseconds(250);
}

void LazyManager::learn_bulk_cost(size_t peers, uint64_t took_ns) {
    // As many peers per chunk as fit the budget at the cost just seen (halfway there,
    // so one slow request does not swing it): kernel WireGuard's remove waits for an RCU
    // grace period, a few ms under emulation, and wireguard-go's cost varies with load.
    if (!peers) return;
    uint64_t per_peer = std::max<uint64_t>(took_ns / peers, 1);
    uint64_t fit = to_ns(opts_.bulk_budget) / per_peer;
    uint64_t next = (bulk_chunk_ + fit) / 2;
    bulk_chunk_ = std::clamp<size_t>(next, kMinBulkChunk, kMaxBulkChunk);
}

void LazyManager::tick(uint64_t now_ns) {
    // Fast ticks are for the handshake poll; the rest keeps its pace.
    if (!backlog_ && fast_poll_ && now_ns < next_slow_tick_ns_) {
        poll_handshakes(now_ns);
        return;
    }
    summarize_log_storms(now_ns);
    next_slow_tick_ns_ = now_ns + to_ns(std::chrono::milliseconds(250));
    backlog_ = false;
    // Deadlines of wakes in progress. The list may hold ids that moved on or repeat.
    std::sort(connecting_.begin(), connecting_.end());
    connecting_.erase(std::unique(connecting_.begin(), connecting_.end()), connecting_.end());
    std::vector<uint32_t> still, expired;
    for (uint32_t id : connecting_) {
        ManagedPeer* p = by_id(id);
        if (!p || p->state != PeerState::Connecting) continue;
        if (now_ns >= p->w().deadline_ns) {
            if (expired.size() >= bulk_chunk_) {
                // Failing a peer costs WireGuard a remove and a re-add; a chunk per turn
                // of the loop, so a real peer's event does not wait for all of them.
                backlog_ = true;
                still.push_back(id);
                continue;
            }
            std::string limit = format_duration(opts_.connect_timeout);
            std::string error = p->w().awaiting_handshake
                                    ? "no handshake within " + limit
                                    : "connector gave no answer within " + limit;
            if (!wg_.available()) error += " (" + wg_.unavailable_reason() + ")";
            note_failure(*p,
                         p->w().awaiting_handshake ? WakeFailure::HandshakeTimeout
                                                   : WakeFailure::ConnectorTimeout,
                         error);
            expired.push_back(id);
            continue;
        }
        still.push_back(id);
    }
    connecting_.swap(still);
    // All in one WireGuard request. A failed peer that talked meanwhile starts a new
    // wake at once, which appends to connecting_ with its own deadline.
    if (!expired.empty()) {
        uint64_t start = monotonic_ns();
        fail_peers(expired);
        learn_bulk_cost(expired.size(), monotonic_ns() - start);
    }
    admit_queued_wakes(now_ns);
    recover_lost_reports(now_ns);
    poll_handshakes(now_ns);
    if (now_ns >= next_scan_ns_) {
        // The shortest threshold in force (a peer's own may be shorter) sets the pace.
        auto every = std::clamp(std::min(opts_.inactivity_threshold, shortest_own_threshold_) / 20,
                                std::chrono::milliseconds(1000), std::chrono::milliseconds(30000));
        next_scan_ns_ = now_ns + to_ns(every);  // also if the scan throws
        uint64_t start = monotonic_ns();
        scan_inactivity(now_ns);  // with the UDP engine, a dump of every peer
        next_scan_ns_ = next_read_ns(now_ns, every, monotonic_ns() - start);
    }
}

void LazyManager::recover_lost_reports(uint64_t now_ns) {
    // The ring buffer was full: some peers' first packet (or first reply) never reached
    // us. The programs marked them; without this they would stay Idle until their next
    // packet. Their lost packets stay dropped (counted), as any overflowing queue's.
    if (!dp_) return;
    uint64_t lost = dp_->lost_reports();
    if (lost == lost_seen_) return;
    uint64_t delta = lost - lost_seen_;
    lost_seen_ = lost;
    uint64_t woken = 0;
    for (auto& p : table_) {
        if (!p.in_use || !dp_->take_missed(p.id) || p.state == PeerState::Connected) continue;
        if (dp_->current_mode(p.id) == SlotMode::Pass) {
            // The ingress program already passes the peer: the lost report was its
            // first reply (the remote woke it, or our handshake completed).
            on_rx_wake(p.id, now_ns);
            ++woken;
        } else if (p.state == PeerState::Idle && now_ns >= p.w().retry_after_ns) {
            wake_idle(p, now_ns, TriggerEvent::Cause::LostReport);
            ++woken;
        }
    }
    lost_recovered_ += woken;
    spdlog::warn(
        "ring buffer overrun: {} reports lost; {} peers recovered (--ring-buffer-kib "
        "sets its size)",
        delta, woken);
    trace_(OverrunEvent{delta, woken});
}

std::vector<uint32_t> LazyManager::awaiting_proof(uint64_t now_ns, bool& urgent) const {
    // At once: peers with packets waiting for the proof, and peers whose endpoint was set
    // moments ago (their handshake completes within a round trip, and with one-way
    // traffic no reply will prove it: status must not say Connecting for a second while
    // the data flows). Then at the normal pace: peers that had that long and did not.
    std::vector<uint32_t> waiting;
    urgent = false;
    size_t unproven_urgent = 0;
    for (uint32_t id : connecting_) {
        const ManagedPeer& p = table_[id];
        if (p.state != PeerState::Connecting || !p.w().awaiting_handshake) continue;
        // Without reports of the first reply the handshake time is the only proof.
        const bool recent = now_ns - p.w().endpoint_set_ns < to_ns(kRecentEndpoint);
        if (!p.w().held.empty() || !dp_->sees_traffic() || recent) {
            if (p.proven)
                urgent = true;
            else
                ++unproven_urgent;
            waiting.push_back(id);
        } else if (now_ns - p.w().endpoint_set_ns >= to_ns(opts_.handshake_poll)) {
            waiting.push_back(id);
        }
    }
    // Each poll reads every peer. A crowd of unproven peers waiting at once is what a
    // sweep of idle peers' addresses makes, and fast polls for it would keep WireGuard
    // busy dumping (wireguard-go then answered other calls only after 500 ms); they
    // wait for the normal pace, unless a proven peer waits too.
    if (unproven_urgent > 0 && unproven_urgent <= kFastPollCrowd) urgent = true;
    return waiting;
}

void LazyManager::poll_handshakes(uint64_t now_ns) {
    bool urgent = false;
    std::vector<uint32_t> waiting = awaiting_proof(now_ns, urgent);
    fast_poll_ = urgent;
    const bool proof_due =
        !waiting.empty() && now_ns >= (urgent ? next_fast_poll_ns_ : next_poll_ns_);
    if (!proof_due && !figures_due(now_ns)) return;
    if (!wg_.available()) return;  // the wakes' deadlines end them
    if (background_read_) {
        // The answer comes through on_device_read; until then the loop goes on.
        if (!read_in_flight_) read_in_flight_ = background_read_();
        return;
    }
    uint64_t start = monotonic_ns();
    WgDevice dev;
    try {
        dev = wg_.get_device();
    } catch (const WgError& e) {
        handshake_read_failed(e.what(), now_ns);
        return;
    }
    take_handshakes(std::move(dev), waiting, now_ns, monotonic_ns() - start);
}

void LazyManager::on_device_read(std::optional<WgDevice> dev, const std::string& error,
                                 uint64_t took_ns, uint64_t now_ns) {
    read_in_flight_ = false;
    if (!dev) {
        handshake_read_failed(error, now_ns);
        return;
    }
    // Who waits now: the wakes that ended or began during the read are sorted out here.
    bool urgent = false;
    std::vector<uint32_t> waiting = awaiting_proof(now_ns, urgent);
    take_handshakes(std::move(*dev), waiting, now_ns, took_ns);
}

void LazyManager::handshake_read_failed(const std::string& error, uint64_t now_ns) {
    spdlog::warn("reading handshake times: {}", error);
    next_poll_ns_ = next_fast_poll_ns_ = now_ns + to_ns(opts_.handshake_poll);
    next_figures_ns_ = now_ns + to_ns(kFiguresEvery);
}

void LazyManager::take_handshakes(WgDevice dev, const std::vector<uint32_t>& waiting,
                                  uint64_t now_ns, uint64_t took) {
    next_poll_ns_ = next_read_ns(now_ns, opts_.handshake_poll, took);
    next_fast_poll_ns_ = next_read_ns(now_ns, opts_.handshake_poll_fast, took);
    note_wg_figures(dev, now_ns);
    next_figures_ns_ = now_ns + std::max(to_ns(kFiguresEvery), 100 * took);
    std::unordered_map<WgKey, uint64_t, WgKeyHash> shaken;  // tx_bytes of peers with one
    for (const auto& wp : dev.peers)
        if (wp.last_handshake_sec) shaken.emplace(wp.public_key, wp.tx_bytes);
    dev = WgDevice{};  // a dump of every peer: its memory goes back at once
    give_back_memory_now_and_then();
    for (uint32_t id : waiting) {
        ManagedPeer& p = table_[id];
        // Re-added without a session when it went idle, so any handshake is a new one.
        if (p.state != PeerState::Connecting || !p.w().awaiting_handshake) continue;
        auto it = shaken.find(p.key);
        if (it == shaken.end()) continue;
        WakeState& w = p.w_mut();
        if (!staged_sent(w, it->second)) {
            // WireGuard stamps the handshake, then sends what it queued for it. A packet
            // let through in between races that send and can overtake it.
            if (!w.handshake_seen_ns) w.handshake_seen_ns = now_ns;
            if (now_ns - w.handshake_seen_ns < to_ns(opts_.flush_grace)) continue;
            spdlog::debug(
                "peer {}: WireGuard's counters do not show the {} packets it queued "
                "for the handshake; taking the handshake as proof",
                p.key.base64(), w.replayed);
        }
        confirm(p, w.trigger_reason);
    }
}

bool LazyManager::figures_due(uint64_t now_ns) const {
    // Idle peers need no read: re-added without a session, their figures are zeros.
    const bool awake = table_.count(PeerState::Connecting) + table_.count(PeerState::Connected) > 0;
    return awake && now_ns >= next_figures_ns_;
}

void LazyManager::note_wg_figures(const WgDevice& dev, uint64_t now_ns) {
    for (const auto& wp : dev.peers)
        if (ManagedPeer* p = table_.find(wp.public_key)) keep_figures(*p, wp, now_ns);
}

bool LazyManager::staged_sent(const WakeState& w, uint64_t tx_bytes) {
    if (w.replayed == 0) return true;
    // The peer was re-added when it went idle, so its counter starts at 0. A message
    // costs its overhead besides the packet (and padding, left out: a lower bound), and a
    // completed handshake sent at least one handshake message, a response or larger.
    // Before the send the counter holds only handshake messages: one initiation passes
    // only for a single packet under 25 bytes, which IP does not have.
    return tx_bytes >= kWgResponseBytes + kWgDataOverheadBytes * w.replayed + w.replayed_bytes;
}

uint64_t LazyManager::last_activity_ns(const ManagedPeer& p) const {
    uint64_t last = std::max(p.w().connected_ns, p.w().wg_active_ns);
    if (dp_) {
        SlotCounters c = dp_->counters(p.id);
        last = std::max({last, c.last_tx_ns, c.last_rx_ns});
    }
    return last;
}

void LazyManager::summarize_log_storms(uint64_t now_ns) {
    state_log_.flush(now_ns, [&](const std::string& kind, uint64_t n) {
        spdlog::info("{} more {} in the last {}", n, kind, format_duration(state_log_.window()));
    });
    failure_log_.flush(now_ns, [&](const std::string& kind, uint64_t n) {
        spdlog::warn("{} more {} in the last {}; `nbagent status --failing` lists them", n, kind,
                     format_duration(failure_log_.window()));
    });
}

void LazyManager::scan_inactivity(uint64_t now_ns) {
    // WireGuard not there: connected peers stay as WireGuard has them, nobody connects.
    if (!wg_.available()) return;
    // Peers that must be connected (never-lazy, or lazy mode off) and are not: retry
    // once their backoff allows. Only with an endpoint or connector to try.
    for (auto& p : table_) {
        if (!p.in_use || p.state != PeerState::Idle || !must_connect(p)) continue;
        bool can = p.has_endpoint() || !p.has_static_connector();
        if (can && now_ns >= p.w().retry_after_ns)
            start_connect(p, now_ns, p.lazy ? WakeReason::LazyOff : WakeReason::NeverLazy);
    }
    if (!opts_.lazy || !dp_) return;
    forget_kept_sessions(now_ns);
    if (!dp_->sees_traffic()) read_wireguard_activity(now_ns);
    const uint64_t global = to_ns(opts_.inactivity_threshold);
    // A group is as active as its most active connected member.
    std::unordered_map<std::string, uint64_t> group_last;
    for (const auto& [name, members] : table_.groups()) {
        uint64_t last = 0;
        for (uint32_t m : members)
            if (table_[m].state == PeerState::Connected)
                last = std::max(last, last_activity_ns(table_[m]));
        group_last[name] = last;
    }
    // Peers on the agent's threshold, and peers on one of their own (InactivityThreshold).
    std::vector<uint32_t> inactive, inactive_own;
    auto shortest_own = std::chrono::milliseconds::max();
    for (const auto& p : table_) {
        if (!p.in_use) continue;
        const auto own = p.own_threshold();
        if (own) shortest_own = std::min(shortest_own, *own);
        if (p.state != PeerState::Connected || !p.lazy) continue;
        const uint64_t threshold = own ? to_ns(*own) : global;
        uint64_t last = last_activity_ns(p);
        for (const auto& g : p.groups()) last = std::max(last, group_last[g]);
        if (now_ns > last && now_ns - last >= threshold)
            (own ? inactive_own : inactive).push_back(p.id);
    }
    shortest_own_threshold_ = shortest_own;
    go_idle_inactive(inactive, "inactive for " + format_duration(opts_.inactivity_threshold),
                     now_ns);
    go_idle_inactive(inactive_own, "inactive for its own InactivityThreshold", now_ns);
}

void LazyManager::go_idle_inactive(const std::vector<uint32_t>& ids, const std::string& reason,
                                   uint64_t now_ns) {
    if (ids.empty()) return;
    spdlog::info("{} peers {}: back to Idle", ids.size(), reason);
    try {
        if (keeps_sessions())
            idle_keeping_sessions(ids, reason, now_ns);
        else
            idle_peers(ids, reason, false);
        counters_.idle(IdleReason::Inactivity) += ids.size();
    } catch (const std::exception& e) {
        spdlog::error("making {} inactive peers idle: {}", ids.size(), e.what());
    }
}

void LazyManager::read_wireguard_activity(uint64_t now_ns) {
    WgDevice dev;
    try {
        dev = wg_.get_device();
    } catch (const WgError& e) {
        spdlog::warn("reading WireGuard's transfer counters: {}", e.what());
        return;
    }
    // Keepalives and handshakes are not activity: only bytes beyond what they could
    // account for since the last scan count.
    uint64_t since = now_ns > last_wg_read_ns_ ? now_ns - last_wg_read_ns_ : 0;
    last_wg_read_ns_ = now_ns;
    std::vector<uint32_t> remote;
    for (const auto& wp : dev.peers) {
        ManagedPeer* found = table_.find(wp.public_key);
        if (!found) continue;
        ManagedPeer& p = *found;
        keep_figures(p, wp, now_ns);  // in this pass: one lookup per peer, not two
        if (p.state == PeerState::Connected) {
            WakeState& w = p.w_mut();
            uint64_t moved = (wp.rx_bytes - std::min(wp.rx_bytes, w.wg_rx_bytes)) +
                             (wp.tx_bytes - std::min(wp.tx_bytes, w.wg_tx_bytes));
            w.wg_rx_bytes = wp.rx_bytes;
            w.wg_tx_bytes = wp.tx_bytes;
            uint64_t keepalives =
                p.keepalive ? since / to_ns(std::chrono::seconds(p.keepalive)) : 0;
            uint64_t allowance = 2 * kWgKeepaliveBytes * (keepalives + 2) +
                                 2 * (kWgInitiationBytes + kWgResponseBytes);
            if (moved > allowance) w.wg_active_ns = now_ns;
        }
        // An idle peer was re-added without a session: a handshake now means the remote
        // started one, and WireGuard answered it from the address it came from.
        if (p.state == PeerState::Idle && wp.last_handshake_sec) remote.push_back(p.id);
    }
    dev = WgDevice{};  // a dump of every peer: its memory goes back at once
    give_back_memory_now_and_then();
    for (uint32_t id : remote) on_rx_wake(id, now_ns);
}

}  // namespace nb
