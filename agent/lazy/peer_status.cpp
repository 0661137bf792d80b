// LazyManager: what `nbagent status` shows of the manager and of each peer.
#include <algorithm>

#include "agent/fleet/node_directory.hpp"
#include "agent/lazy/lazy_manager.hpp"

namespace nb {

void LazyManager::fill_peer_status(const ManagedPeer& p, int64_t unix_now_ms, uint64_t mono_now_ns,
                                   PeerStatus& s) const {
    // Assigned in place: `s` is reused for every peer, so its strings keep their capacity.
    s.public_key.clear();
    p.key.append_base64(s.public_key);
    s.allowed_ips.resize(p.allowed_ips.size());
    for (size_t i = 0; i < s.allowed_ips.size(); ++i) {
        s.allowed_ips[i].clear();
        p.allowed_ips[i].append_to(s.allowed_ips[i]);
    }
    s.state = p.state;
    const WakeState& w = p.w();
    s.endpoint.clear();
    if (w.endpoint) w.endpoint->append_to(s.endpoint);
    s.wake_endpoint.clear();
    const bool from_fleet = opts_.fleet && p.extra && p.extra->connector_spec &&
                            *p.extra->connector_spec == to_string(ConnectorKind::Etcd);
    std::vector<std::string> published;
    if (from_fleet) published = opts_.fleet->endpoints_of(p.key);
    if (!published.empty())
        s.wake_endpoint = published.front();  // what the etcd connector dials now
    else if (!p.has_static_connector() && !from_fleet)
        s.wake_endpoint = "exec";
    else if (p.endpoint_addr.len)
        p.endpoint_addr.append_to(s.wake_endpoint);
    else if (p.extra)
        s.wake_endpoint = p.extra->endpoint_host;
    // Since the state began: the moment WireGuard forgot the session, the wake's trigger,
    // the start of the Connected period; on the manager's clock, shown in unix time.
    const uint64_t since_ns = p.state == PeerState::Idle         ? p.idle_since_ns
                              : p.state == PeerState::Connecting ? w.trigger_ns
                                                                 : w.connected_ns;
    s.state_since_ms =
        since_ns ? unix_now_ms - static_cast<int64_t>(elapsed_ns(since_ns, mono_now_ns) / 1000000)
                 : 0;
    s.wakes = p.wakes;
    s.held = 0;
    s.dropped = p.agent_dropped;
    s.last_wake_ms = p.shown_wake_ms();
    s.last_activity_ms = 0;
    s.lazy = p.lazy;
    s.groups = p.groups();
    s.failures = w.failures;
    s.last_error = w.last_error;
    s.rx_bytes = w.wg_figures.rx_bytes;
    s.tx_bytes = w.wg_figures.tx_bytes;
    s.last_handshake_ms = w.wg_figures.last_handshake_sec * 1000;
    s.wg_read_ms = w.wg_figures.read_ns
                       ? unix_now_ms - static_cast<int64_t>(
                                           elapsed_ns(w.wg_figures.read_ns, mono_now_ns) / 1000000)
                       : 0;
    s.retry_in_ms = 0;
    if (w.retry_after_ns > mono_now_ns)
        s.retry_in_ms = static_cast<int64_t>((w.retry_after_ns - mono_now_ns) / 1000000);
    if (dp_) {
        SlotCounters c = dp_->counters(p.id);
        s.held = c.held;
        s.dropped += c.dropped;
        uint64_t last = std::max(c.last_tx_ns, c.last_rx_ns);
        // Stamps are jiffies: one may lie up to a jiffy past now.
        if (last)
            s.last_activity_ms =
                unix_now_ms -
                static_cast<int64_t>((mono_now_ns - std::min(last, mono_now_ns)) / 1000000);
    }
}

PeerStatusSource LazyManager::peer_statuses() const {
    return peer_statuses(PeerFilter{});
}

std::optional<uint32_t> LazyManager::route_of(const IpAddr& ip) const {
    std::optional<uint32_t> best;
    int best_len = -1;
    for (const auto& p : table_) {
        if (!p.in_use) continue;
        for (const IpPrefix& pre : p.allowed_ips)
            if (pre.len > best_len && pre.contains(ip)) {
                best = p.id;
                best_len = pre.len;
            }
    }
    return best;
}

bool LazyManager::selected(const ManagedPeer& p, const PeerFilter& f, uint64_t now_ns) const {
    if (f.state && p.state != *f.state) return false;
    if (f.failing) {
        const WakeState& w = p.w();
        if (w.failures == 0 && w.last_error.empty() && w.retry_after_ns <= now_ns) return false;
    }
    if (!f.key_prefix.empty()) {
        // Reused: a key's 44 characters do not fit a short string, and this runs per peer.
        thread_local std::string text;
        text.clear();
        p.key.append_base64(text);
        if (text.compare(0, f.key_prefix.size(), f.key_prefix) != 0) return false;
    }
    return true;
}

PeerStatusSource LazyManager::peer_statuses(const PeerFilter& f) const {
    // An address or a whole key names at most one peer: found once, not tested per peer.
    std::optional<uint32_t> only;
    bool none = false;
    if (f.ip) {
        only = route_of(*f.ip);
        none = !only;
    }
    if (f.key_prefix.size() == 44) {
        auto key = WgKey::from_base64(f.key_prefix);
        const ManagedPeer* p = key ? table_.find(*key) : nullptr;
        if (!p || (only && *only != p->id)) none = true;
        if (p) only = p->id;
    }
    return [this, f, only, none, i = size_t{0}, now_ms = unix_now(),
            now_ns = clock_now()](PeerStatus& s) mutable {
        if (none) return false;
        if (only) {
            const ManagedPeer& p = table_[*only];
            none = true;  // one peer at most
            if (!selected(p, f, now_ns)) return false;
            fill_peer_status(p, now_ms, now_ns, s);
            return true;
        }
        for (; i < table_.slots(); ++i) {
            const ManagedPeer& p = table_[static_cast<uint32_t>(i)];
            if (!p.in_use || !selected(p, f, now_ns)) continue;
            fill_peer_status(p, now_ms, now_ns, s);
            ++i;
            return true;
        }
        return false;
    };
}

LazyStatus LazyManager::status(bool detail) const {
    LazyStatus st;
    st.lazy = opts_.lazy;
    st.inactivity_threshold_ms = opts_.inactivity_threshold.count();
    st.lost_reports = lost_seen_;
    st.lost_recovered = lost_recovered_;
    st.wakes_queued = admission_.queued();
    st.wakes_deferred = admission_.deferred();
    st.wakes_shed = admission_.shed();
    int64_t now_ms = unix_now();
    uint64_t now_ns = clock_now();
    // Kept as peers change: the counts cost nothing at a million peers.
    st.idle = table_.count(PeerState::Idle);
    st.connecting = table_.count(PeerState::Connecting);
    st.connected = table_.count(PeerState::Connected);
    if (!detail) return st;
    st.peers.reserve(table_.size());
    for (const auto& p : table_)
        if (p.in_use) fill_peer_status(p, now_ms, now_ns, st.peers.emplace_back());
    return st;
}

}  // namespace nb
