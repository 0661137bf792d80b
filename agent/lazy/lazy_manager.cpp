#include "agent/lazy/lazy_manager.hpp"

#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <stdexcept>

#include "agent/activity/packet_summary.hpp"

namespace nb {

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);  // the clock bpf_ktime_get_ns() reads
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

std::string rfc3339_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    char buf[40];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
    snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
    return buf;
}

namespace {

const char* proto_name(uint8_t proto) {
    switch (proto) {
        case IPPROTO_TCP:
            return "tcp";
        case IPPROTO_UDP:
            return "udp";
        case IPPROTO_ICMP:
            return "icmp";
        case IPPROTO_ICMPV6:
            return "icmpv6";
        default:
            return nullptr;
    }
}

int64_t unix_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

LazyManager::LazyManager(LazyOptions opts, WgControl& wg, HoldDatapath* datapath, PacketSink* sink,
                         ConnectQueue& connects, TraceFn trace)
    : opts_(std::move(opts)),
      wg_(wg),
      dp_(datapath),
      sink_(sink),
      connects_(connects),
      trace_(std::move(trace)) {
    if (opts_.lazy && (!dp_ || !sink_))
        throw std::invalid_argument("lazy mode needs a datapath and a packet sink");
}

void LazyManager::install(std::vector<PeerSpec> specs, DeviceUpdate update) {
    // Everything that can fail on bad input is checked before WireGuard is touched.
    std::vector<ManagedPeer> fresh;
    fresh.reserve(specs.size());
    // Connectors hold no per-peer state: peers with the same spec share one.
    std::unordered_map<std::string, std::shared_ptr<Connector>> connectors;
    for (auto& spec : specs) {
        ManagedPeer p;
        p.id = static_cast<uint32_t>(peers_.size() + fresh.size());
        auto& shared = connectors[spec.connector.value_or("static")];
        try {
            if (!shared) shared = make_connector(spec.connector, opts_.exec_timeout);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("peer " + spec.wg.public_key.base64() + ": " + e.what());
        }
        p.connector = shared;
        p.spec = std::move(spec);
        if (!opts_.lazy && p.spec.endpoint) {
            ConnectResult r = resolve_endpoint(*p.spec.endpoint);
            if (r.endpoint)
                p.endpoint = r.endpoint;
            else
                p.last_error = r.error;
        }
        fresh.push_back(std::move(p));
    }

    for (const auto& p : fresh) {
        // Without replace_peers, an existing peer may carry an endpoint and session:
        // removing it first is the only way WireGuard forgets them.
        if (!update.replace_peers) update.peers.push_back(remove_peer_op(p.spec.wg.public_key));
        PeerUpdate op = readd_peer_op(p.spec.wg);
        if (!opts_.lazy && p.endpoint) {
            op.endpoint = p.endpoint;
            op.persistent_keepalive = p.spec.keepalive;
        }
        update.peers.push_back(std::move(op));
    }
    // The datapath holds first: from the moment WireGuard loses a peer's endpoint,
    // no packet may reach it, or wireguard-go would burn its 5 s handshake slot.
    if (dp_) {
        for (const auto& p : fresh) dp_->install_peer(p.id, p.spec.wg.allowed_ips, opts_.lazy);
    }
    try {
        wg_.set_device(update);
    } catch (...) {
        if (dp_) {
            for (const auto& p : fresh) dp_->remove_peer(p.id, p.spec.wg.allowed_ips);
        }
        throw;
    }

    for (auto& p : fresh) {
        if (!opts_.lazy && p.endpoint) p.state = PeerState::Connected;
        by_key_[p.spec.wg.public_key] = p.id;
        peers_.push_back(std::move(p));
    }
}

ManagedPeer* LazyManager::by_id(uint32_t id) {
    return id < peers_.size() ? &peers_[id] : nullptr;
}

const ManagedPeer* LazyManager::find(const WgKey& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : &peers_[it->second];
}

void LazyManager::on_held_packet(uint32_t id, std::span<const uint8_t> packet, uint64_t ts_ns) {
    ManagedPeer* p = by_id(id);
    if (!p) {
        // A slot we never installed: keep the datapath's count honest and move on.
        if (dp_) dp_->release_pending(id, 1);
        return;
    }
    switch (p->state) {
        case PeerState::Connected:
            // Held while earlier packets were still being replayed: keep the order.
            replay(*p, packet);
            return;
        case PeerState::Idle: {
            nlohmann::json ev = {{"event", "trigger"},
                                 {"ts", rfc3339_now()},
                                 {"peer", p->spec.wg.public_key.base64()}};
            if (auto s = summarize_packet(packet)) {
                ev["src"] = s->src.str();
                ev["dst"] = s->dst.str();
                const char* name = proto_name(s->proto);
                ev["proto"] = name ? nlohmann::json(name) : nlohmann::json(s->proto);
                if (s->sport || s->dport) {
                    ev["sport"] = s->sport;
                    ev["dport"] = s->dport;
                }
            }
            trace_(ev);
            start_connect(*p, ts_ns, "packet");
            break;
        }
        case PeerState::Connecting:
            break;
    }
    if (p->held.size() >= opts_.max_held) {
        ++p->agent_dropped;
        dp_->release_pending(id, 1);
        return;
    }
    p->held.emplace_back(packet.begin(), packet.end());
}

void LazyManager::on_remote_activity(uint32_t id, uint64_t ts_ns) {
    ManagedPeer* p = by_id(id);
    if (!p || p->state != PeerState::Idle) return;
    // The remote completed a handshake with us, so WireGuard already has a session
    // and the endpoint it came from: no connector is needed, only the hold lifted.
    p->trigger_ns = ts_ns;
    p->trigger_reason = "remote";
    ++p->wakes;
    release_hold(*p);
    uint64_t now = monotonic_ns();
    p->last_wake_ms = now > ts_ns ? static_cast<double>(now - ts_ns) / 1e6 : 0.0;
    transition(*p, PeerState::Connected, "remote");
}

void LazyManager::start_connect(ManagedPeer& p, uint64_t ts_ns, const std::string& reason) {
    p.trigger_ns = ts_ns;
    p.trigger_reason = reason;
    ++p.wakes;
    p.job_id = next_job_++;
    jobs_[p.job_id] = p.id;
    transition(p, PeerState::Connecting, reason);
    ConnectPool::Job job;
    job.job_id = p.job_id;
    job.connector = p.connector;
    job.req.peer = p.spec.wg.public_key;
    job.req.interface = opts_.interface;
    job.req.configured_endpoint = p.spec.endpoint;
    connects_.submit(std::move(job));
}

void LazyManager::on_connect_done(const ConnectPool::Completion& done) {
    auto it = jobs_.find(done.job_id);
    if (it == jobs_.end()) return;
    ManagedPeer* p = by_id(it->second);
    jobs_.erase(it);
    // The peer may have been made idle (or woken again) while the connector ran.
    if (!p || p->state != PeerState::Connecting || p->job_id != done.job_id) return;
    if (!done.result.endpoint) {
        fail_connect(*p,
                     done.result.error.empty() ? "connector gave no endpoint" : done.result.error);
        return;
    }
    finish_connect(*p, *done.result.endpoint);
}

// Gives a known peer its endpoint and keepalive: what Connected means to WireGuard.
static PeerUpdate connect_op(const ManagedPeer& p, const SockAddr& ep) {
    PeerUpdate op;
    op.public_key = p.spec.wg.public_key;
    op.update_only = true;
    op.endpoint = ep;
    op.persistent_keepalive = p.spec.keepalive;
    return op;
}

void LazyManager::finish_connect(ManagedPeer& p, const SockAddr& ep) {
    DeviceUpdate u;
    u.peers.push_back(connect_op(p, ep));
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        fail_connect(p, std::string("setting endpoint: ") + e.what());
        return;
    }
    p.endpoint = ep;
    p.last_error.clear();
    release_hold(p);
    uint64_t now = monotonic_ns();
    p.last_wake_ms = now > p.trigger_ns ? static_cast<double>(now - p.trigger_ns) / 1e6 : 0.0;
    transition(p, PeerState::Connected, p.trigger_reason);
}

void LazyManager::release_hold(ManagedPeer& p) {
    // Order matters: the program must let re-injected packets through before they
    // are sent, and keeps holding new ones until every held one has gone out.
    dp_->set_hold(p.id, false);
    for (const auto& packet : p.held) replay(p, packet);
    std::vector<std::vector<uint8_t>>().swap(p.held);  // give the memory back
}

void LazyManager::replay(ManagedPeer& p, std::span<const uint8_t> packet) {
    bool sent = false;
    try {
        sent = sink_->inject(packet);
    } catch (const std::exception& e) {
        spdlog::warn("re-injecting a packet for {}: {}", p.spec.wg.public_key.base64(), e.what());
    }
    if (!sent) ++p.agent_dropped;
    // Only now, with the packet in WireGuard's queue (or gone), may newer packets pass.
    dp_->release_pending(p.id, 1);
}

void LazyManager::fail_connect(ManagedPeer& p, const std::string& error) {
    spdlog::warn("peer {} failed to connect: {}", p.spec.wg.public_key.base64(), error);
    p.last_error = error;
    drop_held(p);
    transition(p, PeerState::Idle, "failed: " + error);
}

void LazyManager::drop_held(ManagedPeer& p) {
    if (p.held.empty()) return;
    auto n = static_cast<uint32_t>(p.held.size());
    p.agent_dropped += n;
    std::vector<std::vector<uint8_t>>().swap(p.held);
    if (dp_) dp_->release_pending(p.id, n);
}

void LazyManager::make_idle(const WgKey& key, const std::string& reason) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) throw std::invalid_argument("unknown peer " + key.base64());
    ManagedPeer& p = peers_[it->second];
    if (!opts_.lazy) throw std::invalid_argument("lazy mode is off: peers stay connected");
    if (p.state == PeerState::Idle) return;
    // Hold first, so nothing reaches WireGuard between clearing the endpoint and
    // the program knowing the peer is idle.
    dp_->set_hold(p.id, true);
    if (p.state == PeerState::Connected) {
        DeviceUpdate u;
        u.peers.push_back(remove_peer_op(p.spec.wg.public_key));
        u.peers.push_back(readd_peer_op(p.spec.wg));
        wg_.set_device(u);
    }
    jobs_.erase(p.job_id);
    p.job_id = 0;
    p.endpoint.reset();
    drop_held(p);
    transition(p, PeerState::Idle, reason);
}

void LazyManager::restore_all() {
    if (!opts_.lazy) return;
    DeviceUpdate u;
    size_t missing = 0;
    for (auto& p : peers_) {
        std::optional<SockAddr> ep = p.endpoint;
        if (!ep && p.spec.endpoint) ep = resolve_endpoint(*p.spec.endpoint).endpoint;
        if (!ep) {
            ++missing;
            continue;
        }
        u.peers.push_back(connect_op(p, *ep));
        p.endpoint = ep;
    }
    if (!u.peers.empty()) wg_.set_device(u);
    if (missing)
        spdlog::warn("{} peers have no endpoint to restore (no Endpoint, or it did not resolve)",
                     missing);
    // Let everything through; packets still in the ring are replayed by the caller's
    // last drain, in order, because these peers now count as Connected.
    for (auto& p : peers_) {
        if (!p.endpoint) continue;
        jobs_.erase(p.job_id);
        p.state = PeerState::Connected;
        release_hold(p);
    }
}

void LazyManager::transition(ManagedPeer& p, PeerState to, const std::string& reason) {
    PeerState from = p.state;
    p.state = to;
    nlohmann::json ev = {
        {"event", "transition"},   {"ts", rfc3339_now()}, {"peer", p.spec.wg.public_key.base64()},
        {"from", to_string(from)}, {"to", to_string(to)}, {"reason", reason}};
    if (to == PeerState::Connected && p.last_wake_ms >= 0) ev["latency_ms"] = p.last_wake_ms;
    spdlog::debug("peer {} {} -> {} ({})", p.spec.wg.public_key.base64(), to_string(from),
                  to_string(to), reason);
    trace_(ev);
}

PeerStatus LazyManager::peer_status(const ManagedPeer& p, int64_t unix_now_ms,
                                    uint64_t mono_now_ns) const {
    PeerStatus s;
    s.public_key = p.spec.wg.public_key.base64();
    s.allowed_ips.reserve(p.spec.wg.allowed_ips.size());
    for (const auto& a : p.spec.wg.allowed_ips) s.allowed_ips.push_back(a.str());
    s.state = p.state;
    if (p.endpoint) s.endpoint = p.endpoint->str();
    s.wakes = p.wakes;
    s.dropped = p.agent_dropped;
    s.last_wake_ms = p.last_wake_ms;
    if (dp_) {
        SlotCounters c = dp_->counters(p.id);
        s.held = c.held;
        s.dropped += c.dropped;
        uint64_t last = std::max(c.last_tx_ns, c.last_rx_ns);
        if (last && last <= mono_now_ns)
            s.last_activity_ms = unix_now_ms - static_cast<int64_t>((mono_now_ns - last) / 1000000);
    }
    return s;
}

AgentStatus LazyManager::status(bool detail) const {
    AgentStatus st;
    st.interface = opts_.interface;
    st.lazy = opts_.lazy;
    int64_t now_ms = unix_ms();
    uint64_t now_ns = monotonic_ns();
    if (detail) st.peers.reserve(peers_.size());
    for (const auto& p : peers_) {
        switch (p.state) {
            case PeerState::Idle:
                ++st.idle;
                break;
            case PeerState::Connecting:
                ++st.connecting;
                break;
            case PeerState::Connected:
                ++st.connected;
                break;
        }
        if (detail) st.peers.push_back(peer_status(p, now_ms, now_ns));
    }
    return st;
}

}  // namespace nb
