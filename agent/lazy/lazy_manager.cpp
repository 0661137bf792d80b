// LazyManager: the state machine. Activity (held packets, UDP triggers, first replies)
// wakes Idle peers; a wake starts the peer's connector and those of its groups. The
// connector's answer and WireGuard's proof are in agent/lazy/connect_results.cpp, the
// way back to Idle in going_idle.cpp, ticks in liveness.cpp, maps in map_update.cpp.
#include "agent/lazy/lazy_manager.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "base/net/packet_summary.hpp"

namespace nb {

namespace {

// Gives a known peer its endpoint and keepalive: what Connected means to WireGuard.
PeerUpdate connect_op(const ManagedPeer& p, const SockAddr& ep) {
    PeerUpdate op;
    op.public_key = p.key;
    op.update_only = true;
    op.endpoint = ep;
    op.persistent_keepalive = p.keepalive;
    return op;
}

}  // namespace

LazyManager::LazyManager(LazyOptions opts, WgControl& wg, HoldDatapath* datapath, PacketSink* sink,
                         ConnectQueue& connects, TraceFn trace)
    : opts_(std::move(opts)),
      admission_(opts_.wake_rate),
      wg_(wg),
      dp_(datapath),
      sink_(sink),
      connects_(connects),
      trace_(std::move(trace)),
      static_connector_(make_connector(std::nullopt, {opts_.exec_timeout, opts_.fleet})) {
    // Only an engine that holds packets needs to re-inject them.
    if (opts_.lazy && (!dp_ || (!sink_ && dp_->sees_traffic())))
        throw std::invalid_argument("lazy mode needs a datapath and, for BPF, a packet sink");
}

void LazyManager::mute(const ManagedPeer& p, uint64_t until_ns) {
    if (dp_ && opts_.lazy) dp_->mute(p.id, until_ns);
}

void LazyManager::trace_drop(ManagedPeer& p, uint64_t now_ns, DropEvent::Reason reason,
                             const std::function<void(DropEvent&)>& more) {
    // Once a second per peer, and only for someone listening: a sweep drops thousands
    // of packets a second, and building their events would be most of its cost.
    WakeState& w = p.w_mut();
    if (!trace_wanted_() || now_ns - w.backoff_trace_ns < 1000000000ull) return;
    w.backoff_trace_ns = now_ns;
    DropEvent ev{p.key, reason, {}, 0, 0};
    more(ev);
    trace_(ev);
}

bool LazyManager::wake_idle(ManagedPeer& p, uint64_t ts_ns, TriggerEvent::Cause cause,
                            std::span<const uint8_t> packet) {
    uint64_t now = clock_now();
    if (!wg_.available()) {
        // Nothing to wake it with. Not a failure of the peer: no backoff to outlast it.
        count_drop(p);
        WakeState& w = p.w_mut();
        w.last_error = wg_.unavailable_reason();
        trace_drop(p, now, DropEvent::Reason::WireGuard,
                   [&w](DropEvent& ev) { ev.error = w.last_error; });
        return false;
    }
    if (now < p.w().retry_after_ns) {
        // Backing off after failed wakes: do not hammer the control plane.
        count_drop(p);
        WakeState& w = p.w_mut();
        // The first such packet is seen (and traced); the rest of the backoff costs the
        // agent nothing.
        mute(p, w.retry_after_ns);
        trace_drop(p, now, DropEvent::Reason::Backoff, [&w, now](DropEvent& ev) {
            ev.retry_in_ms = (w.retry_after_ns - now) / 1000000;
            ev.error = w.last_error;
        });
        return false;
    }
    if (!p.proven) {
        switch (admission_.request(p.id, now)) {
            case WakeAdmission::Verdict::Now:
                break;
            case WakeAdmission::Verdict::Queued:
                // Its turn comes in admit_queued_wakes; a few packets wait with it.
                if (p.w().held.size() < kHeldWhileQueued) return true;
                count_drop(p);
                mute(p, now + kQueuedMuteNs);
                return false;
            case WakeAdmission::Verdict::Shed: {
                count_drop(p);
                mute(p, now + kQueuedMuteNs);
                trace_drop(p, now, DropEvent::Reason::QueueFull,
                           [this](DropEvent& ev) { ev.queued = admission_.queued(); });
                return false;
            }
        }
    }
    TriggerEvent ev{p.key, cause, std::nullopt};
    if (cause == TriggerEvent::Cause::Packet) ev.packet = summarize_packet(packet);
    trace_(ev);
    start_connect(p, ts_ns, WakeReason::Packet);
    return true;
}

void LazyManager::admit_queued_wakes(uint64_t now_ns) {
    std::vector<uint32_t> turn = admission_.admit(now_ns, bulk_chunk_);
    // A full chunk: more may be due; the next tick comes soon for them.
    if (turn.size() == bulk_chunk_) backlog_ = true;
    for (uint32_t id : turn) {
        ManagedPeer* p = by_id(id);
        // Woken meanwhile by its remote, or removed and its id reused: nothing to do.
        if (!p || p->state != PeerState::Idle) continue;
        if (!wg_.available() || now_ns < p->w().retry_after_ns) {
            // Its turn came and went: what it kept would otherwise wait for its next
            // wake, maybe minutes later, and keep its slot holding.
            drop_held(*p);
            continue;
        }
        trace_(TriggerEvent{p->key, TriggerEvent::Cause::Queued, std::nullopt});
        start_connect(*p, now_ns, WakeReason::Packet);
    }
}

void LazyManager::on_held_packets(uint32_t id, std::span<const std::span<const uint8_t>> packets,
                                  uint64_t ts_ns) {
    // A removed peer: resetting its slot already dropped the count, and raising it now
    // would leave a fresh slot waiting for packets that never come.
    if (packets.empty() || !by_id(id)) return;
    // The program counted one; each packet below is released once, replayed or not.
    if (packets.size() > 1) dp_->add_pending(id, static_cast<uint32_t>(packets.size() - 1));
    for (auto packet : packets) on_held_packet(id, packet, ts_ns);
}

void LazyManager::on_held_packet(uint32_t id, std::span<const uint8_t> packet, uint64_t ts_ns) {
    ManagedPeer* p = by_id(id);
    // A removed peer: resetting its slot already dropped the count.
    if (!p) return;
    ++counters_.packets_held;
    switch (p->state) {
        case PeerState::Connected:
            // Held while earlier packets were still being replayed: keep the order.
            replay(*p, packet);
            return;
        case PeerState::Connecting: {
            // The endpoint is set. WireGuard needs one packet to start its handshake;
            // more must wait for the handshake to be proven: it flushes its queue when
            // the handshake completes, and a packet sent then could overtake the queue.
            const WakeState& w = p->w();
            if (w.awaiting_handshake && w.replayed == 0 && w.held.empty()) {
                replay(*p, packet);
                return;
            }
            if (w.awaiting_handshake) fast_poll_ = true;
            break;
        }
        case PeerState::Idle: {
            if (!wake_idle(*p, ts_ns, TriggerEvent::Cause::Packet, packet)) {
                dp_->release_pending(id, 1);
                return;
            }
            break;
        }
    }
    WakeState& w = p->w_mut();
    if (w.held.size() >= opts_.max_held) {
        count_drop(*p);
        dp_->release_pending(id, 1);
        return;
    }
    w.held.emplace_back(packet.begin(), packet.end());
}

void LazyManager::on_trigger(uint32_t id, uint64_t ts_ns) {
    ManagedPeer* p = by_id(id);
    if (!p || p->state != PeerState::Idle) return;  // WireGuard's retries while waking
    // Backing off: WireGuard drops what it queued for the handshake.
    wake_idle(*p, ts_ns, TriggerEvent::Cause::Handshake);
}

void LazyManager::on_rx_wake(uint32_t id, uint64_t ts_ns) {
    ManagedPeer* p = by_id(id);
    // Traffic from before WireGuard forgot the session proves nothing about now;
    // idle_peers() deals with a slot the program flipped meanwhile.
    if (!p || ts_ns < p->idle_since_ns) return;
    switch (p->state) {
        case PeerState::Idle: {
            // The remote completed a handshake with us, so WireGuard already has a
            // session and the endpoint it came from: no connector is needed.
            WakeState& w = p->w_mut();
            w.trigger_ns = ts_ns;
            w.trigger_reason = "remote";
            ++p->wakes;
            ++counters_.wake(WakeReason::Remote);
            release_hold(*p, SlotMode::Pass);
            if (p->keepalive) {
                PeerUpdate op;
                op.public_key = p->key;
                op.update_only = true;
                op.persistent_keepalive = p->keepalive;
                DeviceUpdate u;
                u.peers.push_back(op);
                try {
                    wg_.set_device(u);
                } catch (const WgError& e) {
                    spdlog::warn("peer {}: setting keepalive: {}", p->key.base64(), e.what());
                }
            }
            confirm(*p, "remote");
            wake_groups(*p, ts_ns);
            return;
        }
        case PeerState::Connecting: {
            WakeState& w = p->w_mut();
            if (w.awaiting_handshake) {
                confirm(*p, w.trigger_reason);
                return;
            }
            // The remote got there before our connector: its handshake gave WireGuard
            // the endpoint, so the connector's answer is no longer needed.
            jobs_.erase(w.job_id);
            w.job_id = 0;
            w.trigger_reason = "remote";
            release_hold(*p, SlotMode::Pass);
            confirm(*p, "remote");
            return;
        }
        case PeerState::Connected:
            return;
    }
}

namespace {

// "peers went Idle -> Connecting": a state change's kind for the log storm, built once
// per pair rather than per change.
const std::string& transition_kind(PeerState from, PeerState to) {
    static const auto kinds = [] {
        std::array<std::string, 9> k;
        for (const auto& f : kPeerStateNames)
            for (const auto& t : kPeerStateNames)
                k[static_cast<size_t>(f.value) * 3 + static_cast<size_t>(t.value)] =
                    std::string("peers went ") + f.name + " -> " + t.name;
        return k;
    }();
    return kinds[static_cast<size_t>(from) * 3 + static_cast<size_t>(to)];
}

// The reason as the trace and the logs have always said it.
std::string wake_reason_text(WakeReason why, const std::string& detail) {
    switch (why) {
        case WakeReason::Group:
            return "group " + detail;
        case WakeReason::LazyOff:
            return "lazy off";
        case WakeReason::NeverLazy:
            return "never lazy";
        default:
            return name_of(kWakeReasonNames, why, "packet");
    }
}

}  // namespace

void LazyManager::start_connect(ManagedPeer& p, uint64_t ts_ns, WakeReason why,
                                const std::string& detail) {
    const std::string reason = wake_reason_text(why, detail);
    ++counters_.wake(why);
    WakeState& w = p.w_mut();
    w.undo_pending = false;
    w.trigger_ns = ts_ns;
    w.phase_ns = 0;
    w.trigger_reason = reason;
    w.prewarm = false;
    ++p.wakes;
    w.job_id = next_job_++;
    w.awaiting_handshake = false;
    w.deadline_ns = clock_now() + to_ns(opts_.connect_timeout);
    jobs_[w.job_id] = p.id;
    connecting_.push_back(p.id);
    transition(p, PeerState::Connecting, reason);
    ConnectPool::Job job;
    job.job_id = w.job_id;
    job.connector = connector_of(p);
    job.req.peer = p.key;
    job.req.interface = opts_.interface;
    job.req.configured_endpoint = p.endpoint_opt();
    connects_.submit(std::move(job));
    wake_groups(p, ts_ns);
}

void LazyManager::wake_groups(const ManagedPeer& p, uint64_t ts_ns) {
    if (p.groups().empty()) return;
    uint64_t now = clock_now();
    for (const auto& g : p.groups()) {
        auto it = table_.groups().find(g);
        if (it == table_.groups().end()) continue;
        // Recursion ends: only Idle members start, and starting makes them Connecting.
        for (uint32_t m : it->second) {
            ManagedPeer& o = table_[m];
            if (!o.in_use || o.state != PeerState::Idle || now < o.w().retry_after_ns) continue;
            if (!admitted_with_group(o, now)) continue;
            start_connect(o, ts_ns, WakeReason::Group, g);
        }
    }
}

void LazyManager::make_idle(const WgKey& key, const std::string& reason) {
    ManagedPeer* found = table_.find(key);
    if (!found) throw std::invalid_argument("unknown peer " + key.base64());
    ManagedPeer& p = *found;
    if (!opts_.lazy) throw std::invalid_argument("lazy mode is off: peers stay connected");
    if (!p.lazy)
        throw std::invalid_argument("peer " + key.base64() + " is never lazy (Lazy = off)");
    if (p.state == PeerState::Idle) return;
    if (!wg_.available()) throw std::runtime_error(wg_.unavailable_reason());
    idle_peers({p.id}, reason, false);
    ++counters_.idle(IdleReason::Operator);
}

bool LazyManager::wake(const WgKey& key) {
    ManagedPeer* p = table_.find(key);
    if (!p) throw std::invalid_argument("unknown peer " + key.base64());
    if (p->state != PeerState::Idle) return false;
    if (!wg_.available()) throw std::runtime_error(wg_.unavailable_reason());
    // The operator asks for it now: a backoff or a queued turn does not apply.
    if (p->wake) p->wake->retry_after_ns = 0;
    start_connect(*p, clock_now(), WakeReason::Operator);
    p->w_mut().prewarm = true;
    return true;
}

size_t LazyManager::wake_group(const std::string& group) {
    auto it = table_.groups().find(group);
    if (it == table_.groups().end()) throw std::invalid_argument("unknown group " + group);
    const std::vector<uint32_t>& members = it->second;
    auto idle = [&] {
        return static_cast<size_t>(std::count_if(members.begin(), members.end(), [&](uint32_t id) {
            return table_[id].in_use && table_[id].state == PeerState::Idle;
        }));
    };
    const size_t before = idle();
    // The first wake starts the rest of the group (those admission lets through) with it.
    for (uint32_t id : members)
        if (table_[id].in_use && table_[id].state == PeerState::Idle) wake(table_[id].key);
    return before - idle();
}

void LazyManager::attach_datapath(HoldDatapath* datapath, PacketSink* sink) {
    if (dp_) throw std::logic_error("the datapath is already attached");
    if (!datapath || (!sink && datapath->sees_traffic()))
        throw std::invalid_argument("attach_datapath needs the datapath and, for BPF, the sink");
    if (table_.slots() > datapath->capacity())
        throw std::invalid_argument("the datapath is too small for the peers");
    dp_ = datapath;
    sink_ = sink;
    for (const auto& p : table_) {
        if (!p.in_use) continue;
        dp_->install_peer(p.id, p.allowed_ips,
                          p.state == PeerState::Connected ? SlotMode::Pass : SlotMode::Hold);
    }
}

void LazyManager::set_inactivity_threshold(std::chrono::milliseconds d) {
    if (d == opts_.inactivity_threshold) return;
    spdlog::info("inactivity threshold {} (was {})", format_duration(d),
                 format_duration(opts_.inactivity_threshold));
    opts_.inactivity_threshold = d;
    next_scan_ns_ = 0;
}

void LazyManager::set_lazy(bool lazy) {
    if (lazy == opts_.lazy) return;
    if (lazy && !dp_) throw std::logic_error("lazy mode needs the datapath attached first");
    opts_.lazy = lazy;
    uint64_t now = clock_now();
    trace_(ModeEvent{lazy});
    spdlog::info("lazy connections {}", lazy ? "on" : "off");
    if (lazy) {
        // Connected peers get a whole threshold from now: nothing is cut off at once.
        for (auto& p : table_)
            if (p.in_use && p.state == PeerState::Connected) p.w_mut().connected_ns = now;
        next_scan_ns_ =
            now + to_ns(std::min(opts_.inactivity_threshold, std::chrono::milliseconds(30000)));
        return;
    }
    // Every idle peer that has a way to connect does so now, backoff or not.
    for (auto& p : table_) {
        if (!p.in_use || p.state != PeerState::Idle) continue;
        if (p.has_endpoint() || !p.has_static_connector()) {
            if (p.wake) p.wake->retry_after_ns = 0;
            start_connect(p, now, WakeReason::LazyOff);
        }
    }
}

void LazyManager::restore_all() {
    if (!dp_) return;  // eager from the start: WireGuard already has everything
    DeviceUpdate u;
    size_t missing = 0;
    for (auto& p : table_) {
        if (!p.in_use) continue;
        // Connected without a known endpoint: the remote woke it and WireGuard has
        // the endpoint it came from, plus its keepalive.
        if (p.state == PeerState::Connected && !p.w().endpoint) continue;
        std::optional<SockAddr> ep = p.w().endpoint;
        if (!ep && p.has_endpoint()) ep = resolve_endpoint(*p.endpoint_opt()).endpoint;
        if (!ep) {
            ++missing;
            continue;
        }
        u.peers.push_back(connect_op(p, *ep));
        p.w_mut().endpoint = ep;
    }
    if (!u.peers.empty()) wg_.set_device(u);
    if (missing)
        spdlog::warn("{} peers have no endpoint to restore (no Endpoint, or it did not resolve)",
                     missing);
    // Let everything through; packets still in the ring are replayed by the caller's
    // last drain, in order, because these peers now count as Connected.
    for (auto& p : table_) {
        if (!p.in_use || !(p.w().endpoint || p.state == PeerState::Connected)) continue;
        WakeState& w = p.w_mut();
        jobs_.erase(w.job_id);
        w.job_id = 0;
        w.awaiting_handshake = false;
        table_.set_state(p, PeerState::Connected);
        release_hold(p, SlotMode::Pass);
    }
}

void LazyManager::transition(ManagedPeer& p, PeerState to, const std::string& reason) {
    PeerState from = p.state;
    table_.set_state(p, to);
    if (from == PeerState::Connected && to == PeerState::Idle && p.w().connected_ns)
        phases_.connected_for.record(elapsed_ns(p.w().connected_ns, clock_now()));
    // A handshake (or a live session, or an operator's must-connect) proves the peer
    // real: its wakes skip the admission queue until one fails.
    if (to == PeerState::Connected) p.proven = true;
    if (from == PeerState::Idle && to != PeerState::Idle) mute(p, 0);
    TransitionEvent ev{p.key, from, to, reason, std::nullopt, {}, std::nullopt};
    if (!p.allowed_ips.empty()) ev.ip = p.allowed_ips[0];
    if (to == PeerState::Connected && p.last_wake_ms >= 0) ev.latency_ms = p.shown_wake_ms();
    if (to == PeerState::Idle) ev.error = p.w().last_error;
    // At info, but a storm of one kind (a sweep, a mass idle) is summed up per window.
    if (state_log_.admit(transition_kind(from, to), clock_now()))
        spdlog::info("peer {} {} -> {} ({})", p.key.base64(), state_name(from), state_name(to),
                     reason);
    trace_(ev);
}

}  // namespace nb
