#include "agent/lazy/lazy_manager.hpp"

#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <stdexcept>
#include <unordered_set>

#include "agent/activity/packet_summary.hpp"
#include "agent/wg/wire_sizes.hpp"
#include "base/fault_point.hpp"
#include "base/memory.hpp"

namespace nb {

const WakeState ManagedPeer::kNoWake{};
const std::optional<std::string> ManagedPeer::kNoString{};
const std::vector<std::string> ManagedPeer::kNoGroups{};

PeerSpec ManagedPeer::spec() const {
    PeerSpec s;
    s.wg.public_key = key;
    s.wg.preshared_key = preshared_key();
    s.wg.allowed_ips = allowed_ips.to_vector();
    s.endpoint = endpoint_opt();
    s.keepalive = keepalive;
    s.connector = connector_spec();
    s.groups = groups();
    s.lazy = lazy;
    return s;
}

namespace {
// Whether a peer has this configured endpoint, numeric ones compared as addresses
// (a diff of a big map asks for every peer: no text formatted).
bool same_endpoint(const ManagedPeer& p, const std::optional<std::string>& e) {
    if (!e) return !p.has_endpoint();
    if (auto a = SockAddr::parse_numeric(*e))
        return p.endpoint_addr.len != 0 && a->family() == p.endpoint_addr.family() &&
               a->port() == p.endpoint_addr.port() && a->ip() == p.endpoint_addr.ip();
    return p.extra && p.extra->endpoint_host == *e;
}
}  // namespace

bool matches(const ManagedPeer& p, const PeerSpec& s) {
    return p.key == s.wg.public_key && p.preshared_key() == s.wg.preshared_key &&
           p.allowed_ips == s.wg.allowed_ips && same_endpoint(p, s.endpoint) &&
           p.keepalive == s.keepalive && p.connector_spec() == s.connector &&
           p.groups() == s.groups && p.lazy == s.lazy;
}

size_t PeerKeyHash::operator()(const WgKey& k) const {
    // absl::Hash, not HashOf: Debian 11's Abseil (2020) predates HashOf.
    return absl::Hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()));
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

// The last wake's latency as status and trace show it: kept as a float (4 bytes per
// peer), shown to the microsecond rather than with a float's spurious digits.
double wake_ms(const ManagedPeer& p) {
    if (p.last_wake_ms < 0) return -1;
    return std::round(static_cast<double>(p.last_wake_ms) * 1000.0) / 1000.0;
}

uint64_t ns(std::chrono::milliseconds d) {
    return static_cast<uint64_t>(d.count()) * 1000000ull;
}

// When to read WireGuard again after a read that took `took_ns`: a dump costs in
// proportion to all peers (a million under emulation take about 27 s), so at least
// `every` later and at most a fifth of the time on it.
uint64_t next_read_ns(uint64_t now_ns, std::chrono::milliseconds every, uint64_t took_ns) {
    return now_ns + std::max(ns(every), 5 * took_ns);
}

// Gives a known peer its endpoint and keepalive: what Connected means to WireGuard.
PeerUpdate connect_op(const ManagedPeer& p, const SockAddr& ep) {
    PeerUpdate op;
    op.public_key = p.key;
    op.update_only = true;
    op.endpoint = ep;
    op.persistent_keepalive = p.keepalive;
    return op;
}

// Prefixes in `a` that are not in `b`.
std::vector<IpPrefix> minus(std::span<const IpPrefix> a, std::span<const IpPrefix> b) {
    std::vector<IpPrefix> out;
    for (const auto& x : a)
        if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
    return out;
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
      static_connector_(make_connector(std::nullopt, opts_.exec_timeout)) {
    // Only an engine that holds packets needs to re-inject them.
    if (opts_.lazy && (!dp_ || (!sink_ && dp_->sees_traffic())))
        throw std::invalid_argument("lazy mode needs a datapath and, for BPF, a packet sink");
}

LazyManager::Prepared LazyManager::prepare(
    PeerSpec spec, uint32_t id,
    std::unordered_map<std::string, std::shared_ptr<Connector>>& connectors) {
    Prepared out;
    ManagedPeer& p = out.peer;
    p.id = id;
    p.in_use = true;
    std::shared_ptr<Connector> connector =
        connector_for(spec.connector, spec.wg.public_key, connectors);
    assign_config(p, std::move(spec), std::move(connector));
    if (must_connect(p) && p.has_endpoint() && p.has_static_connector()) {
        ConnectResult r = resolve_endpoint(*p.endpoint_opt());
        if (r.endpoint) {
            p.w_mut().endpoint = r.endpoint;
            out.connect_now = true;
        } else {
            p.w_mut().last_error = r.error;
        }
    }
    return out;
}

void LazyManager::assign_config(ManagedPeer& p, PeerSpec spec,
                                std::shared_ptr<Connector> connector) const {
    p.key = spec.wg.public_key;
    p.allowed_ips.assign(spec.wg.allowed_ips);
    p.endpoint_addr = {};
    std::string host;
    if (spec.endpoint) {
        if (auto a = SockAddr::parse_numeric(*spec.endpoint))
            p.endpoint_addr = *a;
        else
            host = std::move(*spec.endpoint);
    }
    p.keepalive = spec.keepalive;
    p.lazy = spec.lazy;
    p.extra.reset();
    if (spec.wg.preshared_key || spec.connector || !spec.groups.empty() || !host.empty()) {
        p.extra = std::make_unique<PeerExtra>();
        p.extra->preshared_key = spec.wg.preshared_key;
        p.extra->endpoint_host = std::move(host);
        p.extra->connector_spec = std::move(spec.connector);
        if (connector != static_connector_) p.extra->connector = std::move(connector);
        p.extra->groups = std::move(spec.groups);
    }
}

std::shared_ptr<Connector> LazyManager::connector_for(
    const std::optional<std::string>& spec, const WgKey& key,
    std::unordered_map<std::string, std::shared_ptr<Connector>>& made) const {
    if (!spec || *spec == "static") return static_connector_;
    // Connectors hold no per-peer state: peers with the same spec share one.
    auto& shared = made[*spec];
    try {
        if (!shared) shared = make_connector(spec, opts_.exec_timeout);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("peer " + key.base64() + ": " + e.what());
    }
    return shared;
}

uint32_t LazyManager::allocate_id() {
    if (!free_ids_.empty()) {
        uint32_t id = free_ids_.back();
        free_ids_.pop_back();
        return id;
    }
    return static_cast<uint32_t>(peers_.size());
}

void LazyManager::install(std::vector<PeerSpec> specs, DeviceUpdate update,
                          const WgDevice* current) {
    if (dp_ && peers_.size() + specs.size() > dp_->capacity()) {
        throw std::invalid_argument(std::to_string(specs.size()) +
                                    " peers do not fit the datapath, sized for " +
                                    std::to_string(dp_->capacity()) + " (see --max-peers)");
    }
    // Everything that can fail on bad input is checked before WireGuard is touched.
    std::vector<Prepared> fresh;
    fresh.reserve(specs.size());
    std::unordered_map<std::string, std::shared_ptr<Connector>> connectors;
    for (auto& spec : specs)
        fresh.push_back(prepare(std::move(spec),
                                static_cast<uint32_t>(peers_.size() + fresh.size()), connectors));
    std::vector<PeerSpec>().swap(specs);  // a million moved-from specs are still memory
    if (current) {
        find_live_sessions(fresh, *current);
        // replace_peers would drop every session: remove only the peers not in the map.
        if (update.replace_peers) {
            update.replace_peers = false;
            std::unordered_set<WgKey, WgKeyHash> keep;
            for (const auto& f : fresh) keep.insert(f.peer.key);
            for (const auto& wp : current->peers)
                if (!keep.count(wp.public_key))
                    update.peers.push_back(remove_peer_op(wp.public_key));
        }
    }

    // Without replace_peers, an existing peer may carry an endpoint and session:
    // removing it first is the only way WireGuard forgets them.
    queue_new_peers(fresh, update, !update.replace_peers);
    // The datapath holds first: from the moment WireGuard loses a peer's endpoint,
    // no packet may reach it, or wireguard-go would burn its 5 s handshake slot.
    hold_new_peers(fresh);
    try {
        wg_.set_device(update);
    } catch (...) {
        if (dp_) {
            for (const auto& f : fresh) dp_->remove_peer(f.peer.id, f.peer.allowed_ips);
        }
        throw;
    }
    uint64_t now = clock_now();
    adopt_new_peers(fresh, now);
    rebuild_groups();
}

void LazyManager::queue_new_peers(const std::vector<Prepared>& fresh, DeviceUpdate& update,
                                  bool remove_stale) const {
    for (const auto& f : fresh) {
        if (f.live) {
            // Its session stays: only the map's side of it is written.
            PeerUpdate op;
            op.public_key = f.peer.key;
            op.update_only = true;
            op.replace_allowed_ips = true;
            const auto ips = f.peer.allowed_ips.span();
            op.allowed_ips.assign(ips.begin(), ips.end());
            op.preshared_key = f.peer.preshared_key();
            op.persistent_keepalive = f.peer.keepalive;
            update.peers.push_back(std::move(op));
            continue;
        }
        if (remove_stale) update.peers.push_back(remove_peer_op(f.peer.key));
        PeerUpdate op = readd_peer_op(f.peer.key, f.peer.preshared_key(), f.peer.allowed_ips);
        if (f.connect_now) {
            op.endpoint = f.peer.w().endpoint;
            op.persistent_keepalive = f.peer.keepalive;
        } else if (dp_) {
            op.endpoint = dp_->idle_endpoint(f.peer.id);
        }
        update.peers.push_back(std::move(op));
    }
}

void LazyManager::hold_new_peers(const std::vector<Prepared>& fresh) {
    if (!dp_) return;
    for (const auto& f : fresh)
        dp_->install_peer(f.peer.id, f.peer.allowed_ips,
                          f.connect_now || f.live ? SlotMode::Pass : SlotMode::Hold);
}

void LazyManager::adopt_new_peers(std::vector<Prepared>& fresh, uint64_t now_ns) {
    uint32_t top = 0;
    for (const auto& f : fresh) top = std::max(top, f.peer.id + 1);
    if (top > peers_.size()) {
        // Exactly: growth by doubling would leave up to half the table as slack.
        peers_.reserve(top);
        by_key_.reserve(by_key_.size() + fresh.size());
    }
    for (auto& f : fresh) {
        if (f.connect_now || f.live) {
            f.peer.state = PeerState::Connected;
            f.peer.w_mut().connected_ns = now_ns;
        } else {
            f.peer.idle_since_ns = now_ns;
        }
        uint32_t id = f.peer.id;
        if (id >= peers_.size()) peers_.resize(id + 1);
        peers_[id] = std::move(f.peer);
        index_peer(peers_[id]);  // after the move: the index reads the key from the table
    }
}

MapDiff LazyManager::apply(std::vector<PeerSpec> specs, DeviceUpdate update, bool dry_run) {
    std::unordered_map<WgKey, size_t, WgKeyHash> index;
    index.reserve(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        if (!index.emplace(specs[i].wg.public_key, i).second)
            throw std::invalid_argument("peer " + specs[i].wg.public_key.base64() +
                                        " appears twice in the new map");
    }
    MapDiff d;
    std::vector<uint32_t> removed;
    std::vector<std::pair<uint32_t, size_t>> changed;  // peer id, index in specs
    std::vector<size_t> added;
    for (uint32_t id : by_key_)
        if (!index.count(peers_[id].key)) removed.push_back(id);
    for (size_t i = 0; i < specs.size(); ++i) {
        auto it = by_key_.find(specs[i].wg.public_key);
        if (it == by_key_.end())
            added.push_back(i);
        else if (matches(peers_[*it], specs[i]))
            ++d.unchanged;
        else
            changed.emplace_back(*it, i);
    }
    std::sort(removed.begin(), removed.end());  // deterministic order for WireGuard and tests
    d.added = added.size();
    d.removed = removed.size();
    d.changed = changed.size();

    // Ids for new peers: ones freed by earlier maps, then new ones. Ids freed by this
    // map are not reused in it, so no late event for a removed peer meets a new one.
    std::vector<uint32_t> new_ids;
    new_ids.reserve(added.size());
    size_t reuse = std::min(free_ids_.size(), added.size());
    for (size_t k = 0; k < reuse; ++k) new_ids.push_back(free_ids_[free_ids_.size() - 1 - k]);
    for (auto tail = static_cast<uint32_t>(peers_.size()); new_ids.size() < added.size(); ++tail)
        new_ids.push_back(tail);
    if (dp_ && !new_ids.empty() &&
        *std::max_element(new_ids.begin(), new_ids.end()) >= dp_->capacity()) {
        throw std::invalid_argument(
            "the new map needs " +
            std::to_string(*std::max_element(new_ids.begin(), new_ids.end()) + 1) +
            " peer slots; the datapath was sized for " + std::to_string(dp_->capacity()) +
            " at start (restart with a larger --max-peers)");
    }
    // Validation: connectors of new and changed peers.
    std::unordered_map<std::string, std::shared_ptr<Connector>> connectors;
    std::vector<Prepared> fresh;
    fresh.reserve(added.size());
    for (size_t k = 0; k < added.size(); ++k)
        fresh.push_back(prepare(specs[added[k]], new_ids[k], connectors));
    std::vector<std::shared_ptr<Connector>> new_connectors(changed.size());
    for (size_t k = 0; k < changed.size(); ++k) {
        const PeerSpec& n = specs[changed[k].second];
        const ManagedPeer& p = peers_[changed[k].first];
        new_connectors[k] = n.connector == p.connector_spec()
                                ? connector_of(p)
                                : connector_for(n.connector, n.wg.public_key, connectors);
    }
    if (dry_run) return d;

    // WireGuard operations: removals, changes in place (sessions survive), additions.
    for (uint32_t id : removed) {
        PeerUpdate op;
        op.public_key = peers_[id].key;
        op.remove = true;
        update.peers.push_back(std::move(op));
    }
    std::vector<std::optional<SockAddr>> new_endpoints(changed.size());
    for (size_t k = 0; k < changed.size(); ++k) {
        const ManagedPeer& p = peers_[changed[k].first];
        const PeerSpec& n = specs[changed[k].second];
        PeerUpdate op;
        op.public_key = n.wg.public_key;
        op.update_only = true;
        bool any = false;
        if (n.wg.allowed_ips != p.allowed_ips) {
            op.replace_allowed_ips = true;
            op.allowed_ips = n.wg.allowed_ips;
            any = true;
        }
        if (n.wg.preshared_key != p.preshared_key()) {
            op.preshared_key = n.wg.preshared_key.value_or(WgKey{});  // all zero: none
            any = true;
        }
        const bool live = p.state != PeerState::Idle;
        const bool is_static = !n.connector || *n.connector == "static";
        if (live && p.w().endpoint && !same_endpoint(p, n.endpoint) && n.endpoint && is_static) {
            ConnectResult r = resolve_endpoint(*n.endpoint);
            if (r.endpoint) {
                op.endpoint = new_endpoints[k] = r.endpoint;
                any = true;
            } else {
                spdlog::warn("peer {}: keeping its endpoint: {}", n.wg.public_key.base64(),
                             r.error);
            }
        }
        if (p.state == PeerState::Connected && n.keepalive != p.keepalive) {
            op.persistent_keepalive = n.keepalive;
            any = true;
        }
        if (any) update.peers.push_back(std::move(op));
    }
    // New to us and so to WireGuard (the agent owns the interface): no stale copy to
    // remove first, which would cost a kernel RCU grace period per peer.
    queue_new_peers(fresh, update, false);

    // Datapath first, all removals before all additions (a prefix may move between
    // peers); new peers hold before WireGuard knows them.
    if (dp_) {
        for (uint32_t id : removed) dp_->remove_routes(peers_[id].allowed_ips);
        for (const auto& [id, i] : changed)
            dp_->remove_routes(minus(peers_[id].allowed_ips, specs[i].wg.allowed_ips));
        hold_new_peers(fresh);
        for (const auto& [id, i] : changed)
            dp_->add_routes(id, minus(specs[i].wg.allowed_ips, peers_[id].allowed_ips));
    }
    fault_point("apply:datapath");
    if (!update.peers.empty() || update.private_key || update.listen_port || update.fwmark) {
        try {
            wg_.set_device(update);
        } catch (...) {
            // Put the datapath back the way the old map had it.
            if (dp_) {
                for (const auto& f : fresh) dp_->remove_peer(f.peer.id, f.peer.allowed_ips);
                for (const auto& [id, i] : changed)
                    dp_->remove_routes(minus(specs[i].wg.allowed_ips, peers_[id].allowed_ips));
                for (const auto& [id, i] : changed)
                    dp_->add_routes(id, minus(peers_[id].allowed_ips, specs[i].wg.allowed_ips));
                for (uint32_t id : removed) dp_->add_routes(id, peers_[id].allowed_ips);
            }
            throw;
        }
    }

    // Our own books.
    uint64_t now = clock_now();
    for (uint32_t id : removed) {
        ManagedPeer& p = peers_[id];
        if (dp_) dp_->remove_peer(id, {});  // the slot; its routes went above
        jobs_.erase(p.w().job_id);
        transition(p, PeerState::Idle, "removed");  // the slot reset dropped `pending`
        admission_.forget(id);
        by_key_.erase(p.key);  // while the table still has the key
        p = ManagedPeer{};
        p.id = id;
    }
    for (size_t k = 0; k < changed.size(); ++k) {
        ManagedPeer& p = peers_[changed[k].first];
        // The key is the same: the index stays valid.
        assign_config(p, std::move(specs[changed[k].second]), std::move(new_connectors[k]));
        if (new_endpoints[k]) p.w_mut().endpoint = new_endpoints[k];
    }
    free_ids_.resize(free_ids_.size() - reuse);
    adopt_new_peers(fresh, now);
    free_ids_.insert(free_ids_.end(), removed.begin(), removed.end());
    rebuild_groups();
    return d;
}

void LazyManager::rebuild_groups() {
    groups_.clear();
    for (const auto& p : peers_) {
        if (!p.in_use) continue;
        for (const auto& g : p.groups()) groups_[g].push_back(p.id);
    }
}

ManagedPeer* LazyManager::by_id(uint32_t id) {
    return id < peers_.size() && peers_[id].in_use ? &peers_[id] : nullptr;
}

const ManagedPeer* LazyManager::find(const WgKey& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : &peers_[*it];
}

std::vector<PeerSpec> LazyManager::specs() const {
    std::vector<PeerSpec> out;
    out.reserve(by_key_.size());
    for (const auto& p : peers_)
        if (p.in_use) out.push_back(p.spec());
    return out;
}

std::vector<IpPrefix> LazyManager::allowed_ips() const {
    std::vector<IpPrefix> out;
    for (const auto& p : peers_)
        if (p.in_use) out.insert(out.end(), p.allowed_ips.begin(), p.allowed_ips.end());
    return out;
}

size_t LazyManager::table_bytes() const {
    size_t n =
        peers_.capacity() * sizeof(ManagedPeer) + by_key_.capacity() * (sizeof(uint32_t) + 1);
    for (const auto& p : peers_) {
        n += p.allowed_ips.heap_bytes();
        if (p.extra) n += sizeof(PeerExtra);
        if (p.wake) n += sizeof(WakeState);
    }
    return n;
}

void LazyManager::mute(const ManagedPeer& p, uint64_t until_ns) {
    if (dp_ && opts_.lazy) dp_->mute(p.id, until_ns);
}

void LazyManager::trace_drop(ManagedPeer& p, uint64_t now_ns, const char* reason,
                             const std::function<void(nlohmann::json&)>& more) {
    // Once a second per peer, and only for someone listening: a sweep drops thousands
    // of packets a second, and building their events would be most of its cost.
    WakeState& w = p.w_mut();
    if (!trace_wanted_() || now_ns - w.backoff_trace_ns < 1000000000ull) return;
    w.backoff_trace_ns = now_ns;
    nlohmann::json ev = {
        {"event", "drop"}, {"ts", rfc3339_now()}, {"peer", p.key.base64()}, {"reason", reason}};
    more(ev);
    trace_(ev);
}

bool LazyManager::wake_idle(ManagedPeer& p, uint64_t ts_ns,
                            const std::function<nlohmann::json()>& trigger_fields) {
    uint64_t now = clock_now();
    if (!wg_.available()) {
        // Nothing to wake it with. Not a failure of the peer: no backoff to outlast it.
        ++p.agent_dropped;
        WakeState& w = p.w_mut();
        w.last_error = wg_.unavailable_reason();
        trace_drop(p, now, "wireguard", [&w](nlohmann::json& ev) { ev["error"] = w.last_error; });
        return false;
    }
    if (now < p.w().retry_after_ns) {
        // Backing off after failed wakes: do not hammer the control plane.
        ++p.agent_dropped;
        WakeState& w = p.w_mut();
        // The first such packet is seen (and traced); the rest of the backoff costs the
        // agent nothing.
        mute(p, w.retry_after_ns);
        trace_drop(p, now, "backoff", [&w, now](nlohmann::json& ev) {
            ev["retry_in_ms"] = (w.retry_after_ns - now) / 1000000;
            ev["error"] = w.last_error;
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
                ++p.agent_dropped;
                mute(p, now + kQueuedMuteNs);
                return false;
            case WakeAdmission::Verdict::Shed: {
                ++p.agent_dropped;
                mute(p, now + kQueuedMuteNs);
                trace_drop(p, now, "wake queue full",
                           [this](nlohmann::json& ev) { ev["queued"] = admission_.queued(); });
                return false;
            }
        }
    }
    nlohmann::json ev = {{"event", "trigger"}, {"ts", rfc3339_now()}, {"peer", p.key.base64()}};
    ev.update(trigger_fields());
    trace_(ev);
    start_connect(p, ts_ns, "packet");
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
        trace_({{"event", "trigger"},
                {"ts", rfc3339_now()},
                {"peer", p->key.base64()},
                {"queued", true}});
        start_connect(*p, now_ns, "packet");
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
            auto fields = [packet] {
                nlohmann::json f = nlohmann::json::object();
                if (auto s = summarize_packet(packet)) {
                    f["src"] = s->src.str();
                    f["dst"] = s->dst.str();
                    const char* name = proto_name(s->proto);
                    f["proto"] = name ? nlohmann::json(name) : nlohmann::json(s->proto);
                    if (s->sport || s->dport) {
                        f["sport"] = s->sport;
                        f["dport"] = s->dport;
                    }
                }
                return f;
            };
            if (!wake_idle(*p, ts_ns, fields)) {
                dp_->release_pending(id, 1);
                return;
            }
            break;
        }
    }
    WakeState& w = p->w_mut();
    if (w.held.size() >= opts_.max_held) {
        ++p->agent_dropped;
        dp_->release_pending(id, 1);
        return;
    }
    w.held.emplace_back(packet.begin(), packet.end());
}

void LazyManager::on_trigger(uint32_t id, uint64_t ts_ns) {
    ManagedPeer* p = by_id(id);
    if (!p || p->state != PeerState::Idle) return;  // WireGuard's retries while waking
    // Backing off: WireGuard drops what it queued for the handshake.
    wake_idle(*p, ts_ns, [] { return nlohmann::json{{"proto", "wireguard-handshake"}}; });
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

void LazyManager::start_connect(ManagedPeer& p, uint64_t ts_ns, const std::string& reason) {
    WakeState& w = p.w_mut();
    w.undo_pending = false;
    w.trigger_ns = ts_ns;
    w.trigger_reason = reason;
    ++p.wakes;
    w.job_id = next_job_++;
    w.awaiting_handshake = false;
    w.deadline_ns = clock_now() + ns(opts_.connect_timeout);
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
        auto it = groups_.find(g);
        if (it == groups_.end()) continue;
        // Recursion ends: only Idle members start, and starting makes them Connecting.
        for (uint32_t m : it->second) {
            ManagedPeer& o = peers_[m];
            if (!o.in_use || o.state != PeerState::Idle || now < o.w().retry_after_ns) continue;
            // Groups multiply a sweep's wakes: unproven members wait their turn too.
            if (!o.proven && admission_.request(o.id, now) != WakeAdmission::Verdict::Now) continue;
            start_connect(o, ts_ns, "group " + g);
        }
    }
}

ManagedPeer* LazyManager::connect_result(const ConnectPool::Completion& done) {
    auto it = jobs_.find(done.job_id);
    if (it == jobs_.end()) return nullptr;
    ManagedPeer* p = by_id(it->second);
    jobs_.erase(it);
    // The peer may have been made idle, woken again or removed while the connector ran.
    if (!p || p->state != PeerState::Connecting || p->w().job_id != done.job_id) return nullptr;
    p->w_mut().job_id = 0;
    if (!done.result.endpoint) {
        fail_connect(*p,
                     done.result.error.empty() ? "connector gave no endpoint" : done.result.error);
        return nullptr;
    }
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
                                          [this](const auto& r) { return peers_[r.first].proven; });
    set_endpoints({ready.begin(), unproven});
    set_endpoints({unproven, ready.end()});
}

void LazyManager::set_endpoints(std::span<const std::pair<uint32_t, SockAddr>> ready) {
    if (ready.size() == 1) set_endpoint(peers_[ready[0].first], ready[0].second);
    if (ready.size() <= 1) return;
    // One request for all: a daemon busy with a storm of wakes answers each request
    // slowly, and per peer those waits would add up while every other event waits.
    DeviceUpdate u;
    for (const auto& [id, ep] : ready) push_connect_ops(u, peers_[id], ep);
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        // Which peer it was is not known (wireguard-go applies lines in order): one by
        // one, each failing on its own. Setting an endpoint twice is harmless.
        spdlog::warn("setting {} endpoints in one request: {}; setting them one by one",
                     ready.size(), e.what());
        for (const auto& [id, ep] : ready)
            if (peers_[id].state == PeerState::Connecting && peers_[id].w().job_id == 0 &&
                !peers_[id].w().awaiting_handshake)
                set_endpoint(peers_[id], ep);
        return;
    }
    for (const auto& [id, ep] : ready) endpoint_applied(peers_[id], ep);
}

void LazyManager::set_endpoint(ManagedPeer& p, const SockAddr& ep) {
    DeviceUpdate u;
    push_connect_ops(u, p, ep);
    try {
        wg_.set_device(u);
    } catch (const WgError& e) {
        fail_connect(p, std::string("setting endpoint: ") + e.what());
        return;
    }
    endpoint_applied(p, ep);
}

void LazyManager::endpoint_applied(ManagedPeer& p, const SockAddr& ep) {
    WakeState& w = p.w_mut();
    w.endpoint = ep;
    w.forget_at_ns = 0;  // push_connect_ops dropped a kept session
    if (!dp_) {
        confirm(p, w.trigger_reason);  // eager without programs: nothing to watch
        return;
    }
    // The held packets go to WireGuard now (it queues them and starts its handshake);
    // newer ones are held until the first reply or the handshake time proves it, and
    // then the peer counts as Connected.
    w.awaiting_handshake = true;
    w.endpoint_set_ns = clock_now();
    w.replayed = 0;
    w.replayed_bytes = 0;
    w.handshake_seen_ns = 0;
    dp_->endpoint_set(p.id, ep);
    release_hold(p, SlotMode::Confirm);
}

void LazyManager::confirm(ManagedPeer& p, const std::string& reason) {
    uint64_t now = clock_now();
    WakeState& w = p.w_mut();
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
        ++p.agent_dropped;
    else if (p.wake && p.wake->awaiting_handshake) {
        ++p.wake->replayed;
        p.wake->replayed_bytes += packet.size();
    }
    // Only now, with the packet in WireGuard's queue (or gone), may newer packets pass.
    dp_->release_pending(p.id, 1);
}

std::chrono::milliseconds LazyManager::backoff_after(uint32_t failures) const {
    int shift = static_cast<int>(std::min<uint32_t>(failures - 1, 20));
    return std::min(opts_.backoff_max, opts_.backoff_base * (int64_t{1} << shift));
}

void LazyManager::note_failure(ManagedPeer& p, const std::string& error) {
    WakeState& w = p.w_mut();
    if (w.undo_pending) return;  // counted already; only making it Idle is retried
    w.undo_pending = true;
    ++w.failures;
    p.proven = false;
    auto backoff = backoff_after(w.failures);
    w.retry_after_ns = clock_now() + ns(backoff);
    w.last_error = error;
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
        uint64_t again = clock_now() + ns(std::chrono::milliseconds(1000));
        for (uint32_t id : ids) {
            ManagedPeer& p = peers_[id];
            if (!p.in_use || p.state != PeerState::Connecting) continue;
            p.w_mut().deadline_ns = again;
            connecting_.push_back(id);
        }
    }
}

void LazyManager::fail_connect(ManagedPeer& p, const std::string& error) {
    note_failure(p, error);
    fail_peers({p.id});
}

void LazyManager::drop_held(ManagedPeer& p) {
    if (!p.wake || p.wake->held.empty()) return;
    auto n = static_cast<uint32_t>(p.wake->held.size());
    p.agent_dropped += n;
    std::vector<std::vector<uint8_t>>().swap(p.wake->held);
    if (dp_) dp_->release_pending(p.id, n);
}

void LazyManager::forget_wake(ManagedPeer& p) {
    // A backoff still running is remembered; anything else an idle peer needs is inline.
    if (p.wake && p.wake->failures == 0 && p.wake->retry_after_ns == 0) p.wake.reset();
}

void LazyManager::idle_peers(const std::vector<uint32_t>& ids, const std::string& reason,
                             bool failed) {
    // Hold first, so nothing reaches WireGuard between clearing the endpoint and the
    // program knowing the peer is idle.
    if (dp_)
        for (uint32_t id : ids) dp_->set_mode(id, SlotMode::Hold);
    // WireGuard has no "unset endpoint": remove and re-add (allowed IPs kept, and with
    // them every route through the interface) clears endpoint, keepalive and session.
    DeviceUpdate u;
    for (uint32_t id : ids) {
        const ManagedPeer& p = peers_[id];
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
                        if (peers_[id].state == PeerState::Connected)
                            dp_->set_mode(id, SlotMode::Pass);
                }
                throw;
            }
        }
    }
    uint64_t now = clock_now();
    std::vector<uint32_t> talked_ids;
    for (uint32_t id : ids) {
        ManagedPeer& p = peers_[id];
        // The ingress program passes a peer that talks to us; if it did during the
        // update above, the remote is active but WireGuard just lost the session.
        bool talked = dp_ && dp_->set_mode(id, SlotMode::Hold) == SlotMode::Pass;
        // WireGuard discards what we replayed into it for a handshake that never came.
        if (failed && p.w().awaiting_handshake) p.agent_dropped += p.w().replayed;
        jobs_.erase(p.w().job_id);
        p.idle_since_ns = now;
        drop_held(p);
        if (p.wake) {
            WakeState& w = *p.wake;
            w.undo_pending = false;
            w.job_id = 0;
            w.awaiting_handshake = false;
            w.endpoint.reset();
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
        if (peers_[id].state == PeerState::Idle) start_connect(peers_[id], now, "remote");
}

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
    uint64_t fit = ns(opts_.bulk_budget) / per_peer;
    uint64_t next = (bulk_chunk_ + fit) / 2;
    bulk_chunk_ = std::clamp<size_t>(next, kMinBulkChunk, kMaxBulkChunk);
}

void LazyManager::tick(uint64_t now_ns) {
    // Fast ticks are for the handshake poll; the rest keeps its pace.
    if (!backlog_ && fast_poll_ && now_ns < next_slow_tick_ns_) {
        poll_handshakes(now_ns);
        return;
    }
    next_slow_tick_ns_ = now_ns + ns(std::chrono::milliseconds(250));
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
            note_failure(*p, error);
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
        auto every = std::clamp(opts_.inactivity_threshold / 20, std::chrono::milliseconds(1000),
                                std::chrono::milliseconds(30000));
        next_scan_ns_ = now_ns + ns(every);  // also if the scan throws
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
    for (auto& p : peers_) {
        if (!p.in_use || !dp_->take_missed(p.id) || p.state == PeerState::Connected) continue;
        if (dp_->current_mode(p.id) == SlotMode::Pass) {
            // The ingress program already passes the peer: the lost report was its
            // first reply (the remote woke it, or our handshake completed).
            on_rx_wake(p.id, now_ns);
            ++woken;
        } else if (p.state == PeerState::Idle && now_ns >= p.w().retry_after_ns) {
            wake_idle(p, now_ns, [] { return nlohmann::json{{"lost_report", true}}; });
            ++woken;
        }
    }
    lost_recovered_ += woken;
    spdlog::warn(
        "ring buffer overrun: {} reports lost; {} peers recovered (--ring-buffer-kib "
        "sets its size)",
        delta, woken);
    trace_({{"event", "overrun"}, {"ts", rfc3339_now()}, {"lost", delta}, {"recovered", woken}});
}

std::vector<uint32_t> LazyManager::awaiting_proof(uint64_t now_ns, bool& urgent) const {
    // Peers that had a second to answer with data and did not (one-way traffic), and
    // at once those with packets waiting for the proof.
    std::vector<uint32_t> waiting;
    urgent = false;
    size_t unproven_urgent = 0;
    for (uint32_t id : connecting_) {
        const ManagedPeer& p = peers_[id];
        if (p.state != PeerState::Connecting || !p.w().awaiting_handshake) continue;
        // Without reports of the first reply the handshake time is the only proof.
        if (!p.w().held.empty() || !dp_->sees_traffic()) {
            if (p.proven)
                urgent = true;
            else
                ++unproven_urgent;
            waiting.push_back(id);
        } else if (now_ns - p.w().endpoint_set_ns >= ns(opts_.handshake_poll)) {
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
    if (waiting.empty() || now_ns < (urgent ? next_fast_poll_ns_ : next_poll_ns_)) return;
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
    next_poll_ns_ = next_fast_poll_ns_ = now_ns + ns(opts_.handshake_poll);
}

void LazyManager::take_handshakes(WgDevice dev, const std::vector<uint32_t>& waiting,
                                  uint64_t now_ns, uint64_t took) {
    next_poll_ns_ = next_read_ns(now_ns, opts_.handshake_poll, took);
    next_fast_poll_ns_ = next_read_ns(now_ns, opts_.handshake_poll_fast, took);
    std::unordered_map<WgKey, uint64_t, WgKeyHash> shaken;  // tx_bytes of peers with one
    for (const auto& wp : dev.peers)
        if (wp.last_handshake_sec) shaken.emplace(wp.public_key, wp.tx_bytes);
    dev = WgDevice{};  // a dump of every peer: its memory goes back at once
    give_back_memory_now_and_then();
    for (uint32_t id : waiting) {
        ManagedPeer& p = peers_[id];
        // Re-added without a session when it went idle, so any handshake is a new one.
        if (p.state != PeerState::Connecting || !p.w().awaiting_handshake) continue;
        auto it = shaken.find(p.key);
        if (it == shaken.end()) continue;
        WakeState& w = p.w_mut();
        if (!staged_sent(w, it->second)) {
            // WireGuard stamps the handshake, then sends what it queued for it. A packet
            // let through in between races that send and can overtake it.
            if (!w.handshake_seen_ns) w.handshake_seen_ns = now_ns;
            if (now_ns - w.handshake_seen_ns < ns(opts_.flush_grace)) continue;
            spdlog::debug(
                "peer {}: WireGuard's counters do not show the {} packets it queued "
                "for the handshake; taking the handshake as proof",
                p.key.base64(), w.replayed);
        }
        confirm(p, w.trigger_reason);
    }
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

void LazyManager::scan_inactivity(uint64_t now_ns) {
    // WireGuard not there: connected peers stay as WireGuard has them, nobody connects.
    if (!wg_.available()) return;
    // Peers that must be connected (never-lazy, or lazy mode off) and are not: retry
    // once their backoff allows. Only with an endpoint or connector to try.
    for (auto& p : peers_) {
        if (!p.in_use || p.state != PeerState::Idle || !must_connect(p)) continue;
        bool can = p.has_endpoint() || !p.has_static_connector();
        if (can && now_ns >= p.w().retry_after_ns)
            start_connect(p, now_ns, p.lazy ? "lazy off" : "never lazy");
    }
    if (!opts_.lazy || !dp_) return;
    forget_kept_sessions(now_ns);
    if (!dp_->sees_traffic()) read_wireguard_activity(now_ns);
    const uint64_t threshold = ns(opts_.inactivity_threshold);
    // A group is as active as its most active connected member.
    std::unordered_map<std::string, uint64_t> group_last;
    for (const auto& [name, members] : groups_) {
        uint64_t last = 0;
        for (uint32_t m : members)
            if (peers_[m].state == PeerState::Connected)
                last = std::max(last, last_activity_ns(peers_[m]));
        group_last[name] = last;
    }
    std::vector<uint32_t> inactive;
    for (const auto& p : peers_) {
        if (!p.in_use || p.state != PeerState::Connected || !p.lazy) continue;
        uint64_t last = last_activity_ns(p);
        for (const auto& g : p.groups()) last = std::max(last, group_last[g]);
        if (now_ns > last && now_ns - last >= threshold) inactive.push_back(p.id);
    }
    if (inactive.empty()) return;
    spdlog::info("{} peers inactive for {}: back to Idle", inactive.size(),
                 format_duration(opts_.inactivity_threshold));
    try {
        const std::string reason = "inactive for " + format_duration(opts_.inactivity_threshold);
        if (keeps_sessions())
            idle_keeping_sessions(inactive, reason, now_ns);
        else
            idle_peers(inactive, reason, false);
    } catch (const std::exception& e) {
        spdlog::error("making {} inactive peers idle: {}", inactive.size(), e.what());
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
        auto it = by_key_.find(wp.public_key);
        if (it == by_key_.end()) continue;
        ManagedPeer& p = peers_[*it];
        if (p.state == PeerState::Connected) {
            WakeState& w = p.w_mut();
            uint64_t moved = (wp.rx_bytes - std::min(wp.rx_bytes, w.wg_rx_bytes)) +
                             (wp.tx_bytes - std::min(wp.tx_bytes, w.wg_tx_bytes));
            w.wg_rx_bytes = wp.rx_bytes;
            w.wg_tx_bytes = wp.tx_bytes;
            uint64_t keepalives = p.keepalive ? since / ns(std::chrono::seconds(p.keepalive)) : 0;
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

void LazyManager::make_idle(const WgKey& key, const std::string& reason) {
    auto it = by_key_.find(key);
    if (it == by_key_.end()) throw std::invalid_argument("unknown peer " + key.base64());
    ManagedPeer& p = peers_[*it];
    if (!opts_.lazy) throw std::invalid_argument("lazy mode is off: peers stay connected");
    if (!p.lazy)
        throw std::invalid_argument("peer " + key.base64() + " is never lazy (Lazy = off)");
    if (p.state == PeerState::Idle) return;
    if (!wg_.available()) throw std::runtime_error(wg_.unavailable_reason());
    idle_peers({p.id}, reason, false);
}

void LazyManager::attach_datapath(HoldDatapath* datapath, PacketSink* sink) {
    if (dp_) throw std::logic_error("the datapath is already attached");
    if (!datapath || (!sink && datapath->sees_traffic()))
        throw std::invalid_argument("attach_datapath needs the datapath and, for BPF, the sink");
    if (!peers_.empty() && peers_.size() > datapath->capacity())
        throw std::invalid_argument("the datapath is too small for the peers");
    dp_ = datapath;
    sink_ = sink;
    for (const auto& p : peers_) {
        if (!p.in_use) continue;
        dp_->install_peer(p.id, p.allowed_ips,
                          p.state == PeerState::Connected ? SlotMode::Pass : SlotMode::Hold);
    }
}

void LazyManager::set_lazy(bool lazy) {
    if (lazy == opts_.lazy) return;
    if (lazy && !dp_) throw std::logic_error("lazy mode needs the datapath attached first");
    opts_.lazy = lazy;
    uint64_t now = clock_now();
    trace_({{"event", "mode"}, {"ts", rfc3339_now()}, {"lazy", lazy}});
    spdlog::info("lazy connections {}", lazy ? "on" : "off");
    if (lazy) {
        // Connected peers get a whole threshold from now: nothing is cut off at once.
        for (auto& p : peers_)
            if (p.in_use && p.state == PeerState::Connected) p.w_mut().connected_ns = now;
        next_scan_ns_ =
            now + ns(std::min(opts_.inactivity_threshold, std::chrono::milliseconds(30000)));
        return;
    }
    // Every idle peer that has a way to connect does so now, backoff or not.
    for (auto& p : peers_) {
        if (!p.in_use || p.state != PeerState::Idle) continue;
        if (p.has_endpoint() || !p.has_static_connector()) {
            if (p.wake) p.wake->retry_after_ns = 0;
            start_connect(p, now, "lazy off");
        }
    }
}

void LazyManager::restore_all() {
    if (!dp_) return;  // eager from the start: WireGuard already has everything
    DeviceUpdate u;
    size_t missing = 0;
    for (auto& p : peers_) {
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
    for (auto& p : peers_) {
        if (!p.in_use || !(p.w().endpoint || p.state == PeerState::Connected)) continue;
        WakeState& w = p.w_mut();
        jobs_.erase(w.job_id);
        w.job_id = 0;
        w.awaiting_handshake = false;
        p.state = PeerState::Connected;
        release_hold(p, SlotMode::Pass);
    }
}

void LazyManager::transition(ManagedPeer& p, PeerState to, const std::string& reason) {
    PeerState from = p.state;
    p.state = to;
    // A handshake (or a live session, or an operator's must-connect) proves the peer
    // real: its wakes skip the admission queue until one fails.
    if (to == PeerState::Connected) p.proven = true;
    if (from == PeerState::Idle && to != PeerState::Idle) mute(p, 0);
    nlohmann::json ev = {{"event", "transition"},   {"ts", rfc3339_now()}, {"peer", p.key.base64()},
                         {"from", to_string(from)}, {"to", to_string(to)}, {"reason", reason}};
    if (to == PeerState::Connected && p.last_wake_ms >= 0) ev["latency_ms"] = wake_ms(p);
    if (to == PeerState::Idle && !p.w().last_error.empty()) ev["error"] = p.w().last_error;
    spdlog::debug("peer {} {} -> {} ({})", p.key.base64(), to_string(from), to_string(to), reason);
    trace_(ev);
}

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
    s.wakes = p.wakes;
    s.held = 0;
    s.dropped = p.agent_dropped;
    s.last_wake_ms = wake_ms(p);
    s.last_activity_ms = 0;
    s.lazy = p.lazy;
    s.groups = p.groups();
    s.failures = w.failures;
    s.last_error = w.last_error;
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
    return [this, i = size_t{0}, now_ms = unix_ms(), now_ns = clock_now()](PeerStatus& s) mutable {
        while (i < peers_.size() && !peers_[i].in_use) ++i;
        if (i == peers_.size()) return false;
        fill_peer_status(peers_[i++], now_ms, now_ns, s);
        return true;
    };
}

AgentStatus LazyManager::status(bool detail) const {
    AgentStatus st;
    st.interface = opts_.interface;
    st.lazy = opts_.lazy;
    st.inactivity_threshold_ms = opts_.inactivity_threshold.count();
    st.lost_reports = lost_seen_;
    st.lost_recovered = lost_recovered_;
    st.wakes_queued = admission_.queued();
    st.wakes_deferred = admission_.deferred();
    st.wakes_shed = admission_.shed();
    int64_t now_ms = unix_ms();
    uint64_t now_ns = clock_now();
    if (detail) st.peers.reserve(by_key_.size());
    for (const auto& p : peers_) {
        if (!p.in_use) continue;
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
        if (detail) fill_peer_status(p, now_ms, now_ns, st.peers.emplace_back());
    }
    return st;
}

}  // namespace nb
