// LazyManager: network maps. install() puts the first one in WireGuard and the
// datapath; apply() moves to a new one, touching only what differs. Each is one
// transaction: validation throws before anything is applied, the datapath changes run
// as a DatapathPlan, and when WireGuard refuses the update the plan is undone.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "agent/lazy/datapath_plan.hpp"
#include "agent/lazy/lazy_manager.hpp"
#include "base/fault_point.hpp"

namespace nb {

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

// Prefixes in `a` that are not in `b`.
std::vector<IpPrefix> minus(std::span<const IpPrefix> a, std::span<const IpPrefix> b) {
    std::vector<IpPrefix> out;
    for (const auto& x : a)
        if (std::find(b.begin(), b.end(), x) == b.end()) out.push_back(x);
    return out;
}

// The WireGuard op for a peer whose config changed in place (its session survives), or
// none when nothing WireGuard has changes. `new_endpoint`: a static endpoint resolved anew.
std::optional<PeerUpdate> change_op(const ManagedPeer& p, const PeerSpec& n,
                                    std::optional<SockAddr>& new_endpoint) {
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
            op.endpoint = new_endpoint = r.endpoint;
            any = true;
        } else {
            spdlog::warn("peer {}: keeping its endpoint: {}", n.wg.public_key.base64(), r.error);
        }
    }
    if (p.state == PeerState::Connected && n.keepalive != p.keepalive) {
        op.persistent_keepalive = n.keepalive;
        any = true;
    }
    if (!any) return std::nullopt;
    return op;
}

}  // namespace

bool matches(const ManagedPeer& p, const PeerSpec& s) {
    return p.key == s.wg.public_key && p.preshared_key() == s.wg.preshared_key &&
           p.allowed_ips == s.wg.allowed_ips && same_endpoint(p, s.endpoint) &&
           p.keepalive == s.keepalive && p.connector_spec() == s.connector &&
           p.groups() == s.groups && p.lazy == s.lazy &&
           p.own_threshold() == s.inactivity_threshold;
}

struct LazyManager::MapChanges {
    std::vector<uint32_t> removed;                     // peer ids, in id order
    std::vector<std::pair<uint32_t, size_t>> changed;  // peer id, index in the specs
    std::vector<size_t> added;                         // index in the specs
    uint64_t unchanged = 0;
};

LazyManager::MapChanges LazyManager::diff_map(const std::vector<PeerSpec>& specs) const {
    std::unordered_map<WgKey, size_t, WgKeyHash> index;
    index.reserve(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
        if (!index.emplace(specs[i].wg.public_key, i).second)
            throw std::invalid_argument("peer " + specs[i].wg.public_key.base64() +
                                        " appears twice in the new map");
    }
    MapChanges c;
    for (uint32_t id : table_.ids())
        if (!index.count(table_[id].key)) c.removed.push_back(id);
    for (size_t i = 0; i < specs.size(); ++i) {
        const ManagedPeer* p = table_.find(specs[i].wg.public_key);
        if (!p)
            c.added.push_back(i);
        else if (matches(*p, specs[i]))
            ++c.unchanged;
        else
            c.changed.emplace_back(p->id, i);
    }
    std::sort(c.removed.begin(), c.removed.end());  // deterministic for WireGuard and tests
    return c;
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
    if (spec.wg.preshared_key || spec.connector || !spec.groups.empty() || !host.empty() ||
        spec.inactivity_threshold) {
        p.extra = std::make_unique<PeerExtra>();
        p.extra->preshared_key = spec.wg.preshared_key;
        p.extra->endpoint_host = std::move(host);
        p.extra->connector_spec = std::move(spec.connector);
        if (connector != static_connector_) p.extra->connector = std::move(connector);
        p.extra->groups = std::move(spec.groups);
        p.extra->inactivity_threshold = spec.inactivity_threshold;
    }
}

std::shared_ptr<Connector> LazyManager::connector_for(
    const std::optional<std::string>& spec, const WgKey& key,
    std::unordered_map<std::string, std::shared_ptr<Connector>>& made) const {
    if (!spec || *spec == "static") return static_connector_;
    // Connectors hold no per-peer state: peers with the same spec share one.
    auto& shared = made[*spec];
    try {
        if (!shared) shared = make_connector(spec, {opts_.exec_timeout, opts_.fleet});
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("peer " + key.base64() + ": " + e.what());
    }
    return shared;
}

void LazyManager::install(std::vector<PeerSpec> specs, DeviceUpdate update,
                          const WgDevice* current) {
    if (dp_ && table_.slots() + specs.size() > dp_->capacity()) {
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
                                static_cast<uint32_t>(table_.slots() + fresh.size()), connectors));
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
    DatapathPlan plan;
    plan_new_peers(plan, fresh);
    commit(plan, update, false);
    adopt_new_peers(fresh, clock_now());
    table_.rebuild_groups();
}

void LazyManager::commit(DatapathPlan& plan, const DeviceUpdate& update, bool is_apply) {
    if (dp_) plan.run(*dp_);
    if (is_apply) {
        fault_point("apply:datapath");
        if (update.peers.empty() && !update.private_key && !update.listen_port && !update.fwmark)
            return;  // a change WireGuard has no part in
    }
    try {
        wg_.set_device(update);
    } catch (...) {
        // Put the datapath back the way the old map had it.
        if (dp_) plan.undo(*dp_);
        throw;
    }
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

void LazyManager::plan_new_peers(DatapathPlan& plan, const std::vector<Prepared>& fresh) const {
    for (const auto& f : fresh)
        plan.install_peer(f.peer.id, f.peer.allowed_ips.span(),
                          f.connect_now || f.live ? SlotMode::Pass : SlotMode::Hold);
}

void LazyManager::adopt_new_peers(std::vector<Prepared>& fresh, uint64_t now_ns) {
    uint32_t top = 0;
    for (const auto& f : fresh) top = std::max(top, f.peer.id + 1);
    table_.reserve(top, fresh.size());
    for (auto& f : fresh) {
        if (f.connect_now || f.live) {
            f.peer.state = PeerState::Connected;
            f.peer.w_mut().connected_ns = now_ns;
        } else {
            f.peer.idle_since_ns = now_ns;
        }
        table_.put(std::move(f.peer));
    }
}

MapDiff LazyManager::apply(std::vector<PeerSpec> specs, DeviceUpdate update, bool dry_run) {
    const MapChanges c = diff_map(specs);
    MapDiff d{c.added.size(), c.removed.size(), c.changed.size(), c.unchanged};
    // Ids for new peers: ones freed by earlier maps, then new ones. Ids freed by this
    // map are not reused in it, so no late event for a removed peer meets a new one.
    size_t reused = 0;
    const std::vector<uint32_t> new_ids = table_.next_ids(c.added.size(), reused);
    if (dp_ && !new_ids.empty()) {
        uint32_t top = *std::max_element(new_ids.begin(), new_ids.end()) + 1;
        if (top > dp_->capacity())
            throw std::invalid_argument("the new map needs " + std::to_string(top) +
                                        " peer slots; the datapath was sized for " +
                                        std::to_string(dp_->capacity()) +
                                        " at start (restart with a larger --max-peers)");
    }
    // Validation: connectors of new and changed peers.
    std::unordered_map<std::string, std::shared_ptr<Connector>> connectors;
    std::vector<Prepared> fresh;
    fresh.reserve(c.added.size());
    for (size_t k = 0; k < c.added.size(); ++k)
        fresh.push_back(prepare(specs[c.added[k]], new_ids[k], connectors));
    std::vector<std::shared_ptr<Connector>> new_connectors(c.changed.size());
    for (size_t k = 0; k < c.changed.size(); ++k) {
        const PeerSpec& n = specs[c.changed[k].second];
        const ManagedPeer& p = table_[c.changed[k].first];
        new_connectors[k] = n.connector == p.connector_spec()
                                ? connector_of(p)
                                : connector_for(n.connector, n.wg.public_key, connectors);
    }
    if (dry_run) return d;

    std::vector<std::optional<SockAddr>> new_endpoints(c.changed.size());
    queue_map_ops(c, specs, fresh, update, new_endpoints);
    DatapathPlan plan = plan_map(c, specs, fresh);
    commit(plan, update, true);

    // Our own books.
    forget_removed(c.removed);
    for (size_t k = 0; k < c.changed.size(); ++k) {
        ManagedPeer& p = table_[c.changed[k].first];
        // The key is the same: the index stays valid.
        assign_config(p, std::move(specs[c.changed[k].second]), std::move(new_connectors[k]));
        if (new_endpoints[k]) p.w_mut().endpoint = new_endpoints[k];
    }
    table_.take_free_ids(reused);
    adopt_new_peers(fresh, clock_now());
    table_.free_ids(c.removed);
    table_.rebuild_groups();
    std::vector<uint32_t> joined;
    for (const auto& f : fresh) joined.push_back(f.peer.id);
    for (const auto& [id, i] : c.changed) joined.push_back(id);
    join_awake_groups(joined);
    return d;
}

void LazyManager::join_awake_groups(const std::vector<uint32_t>& ids) {
    const uint64_t now = clock_now();
    for (uint32_t id : ids) {
        ManagedPeer& p = table_[id];
        if (!p.in_use || p.state != PeerState::Idle || p.groups().empty()) continue;
        for (const auto& g : p.groups()) {
            const auto& members = table_.groups().at(g);
            const bool awake = std::any_of(members.begin(), members.end(), [&](uint32_t m) {
                return m != id && table_[m].state == PeerState::Connected;
            });
            if (!awake) continue;
            // As any group wake (a map that adds thousands of members must not bury a real
            // peer's handshake).
            if (admitted_with_group(p, now)) start_connect(p, now, WakeReason::Group, g);
            break;
        }
    }
}

void LazyManager::queue_map_ops(const MapChanges& c, const std::vector<PeerSpec>& specs,
                                const std::vector<Prepared>& fresh, DeviceUpdate& update,
                                std::vector<std::optional<SockAddr>>& new_endpoints) const {
    // Removals, changes in place (sessions survive), additions.
    for (uint32_t id : c.removed) update.peers.push_back(remove_peer_op(table_[id].key));
    for (size_t k = 0; k < c.changed.size(); ++k) {
        auto op =
            change_op(table_[c.changed[k].first], specs[c.changed[k].second], new_endpoints[k]);
        if (op) update.peers.push_back(std::move(*op));
    }
    // New to us and so to WireGuard (the agent owns the interface): no stale copy to
    // remove first, which would cost a kernel RCU grace period per peer.
    queue_new_peers(fresh, update, false);
}

DatapathPlan LazyManager::plan_map(const MapChanges& c, const std::vector<PeerSpec>& specs,
                                   const std::vector<Prepared>& fresh) const {
    // All removals before all additions (a prefix may move between peers); new peers
    // hold before WireGuard knows them.
    DatapathPlan plan;
    for (uint32_t id : c.removed) plan.remove_routes(id, table_[id].allowed_ips.span());
    for (const auto& [id, i] : c.changed)
        plan.remove_routes(id, minus(table_[id].allowed_ips, specs[i].wg.allowed_ips));
    plan_new_peers(plan, fresh);
    for (const auto& [id, i] : c.changed)
        plan.add_routes(id, minus(specs[i].wg.allowed_ips, table_[id].allowed_ips));
    return plan;
}

void LazyManager::forget_removed(const std::vector<uint32_t>& removed) {
    for (uint32_t id : removed) {
        ManagedPeer& p = table_[id];
        if (dp_) dp_->remove_peer(id, {});  // the slot; its routes went with the plan
        jobs_.erase(p.w().job_id);
        transition(p, PeerState::Idle, "removed");  // the slot reset dropped `pending`
        admission_.forget(id);
        table_.remove(id);
    }
}

}  // namespace nb
