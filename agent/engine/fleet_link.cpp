// The fleet on the agent's side: the store's threads (FleetSync, Registration) report to
// the loop through an eventfd, and the loop turns a directory change into a map diff (as
// SIGHUP does) and a node's move into a new endpoint for its Connected peer.
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "agent/engine/agent.hpp"
#include "agent/fleet/advertise.hpp"
#include "base/build_info.hpp"

namespace nb::engine {

namespace {

// How long a start with --map etcd waits for the store's first answer before it starts
// with the file's peers alone (the rest follow when the store answers).
constexpr auto kFirstReadWait = std::chrono::seconds(3);

EtcdOptions etcd_options(const FleetOptions& f) {
    EtcdOptions o;
    // All members of a request share this budget. Within a third of the lease, so a
    // member that stopped answering (or a connection whose source address is gone after
    // a move) costs one keepalive, not the lease: the next goes to another member.
    o.request_timeout = std::min<std::chrono::milliseconds>(o.request_timeout, f.lease_ttl / 3);
    o.endpoints = f.etcd_endpoints;
    o.ca_file = f.etcd_ca;
    o.cert_file = f.etcd_cert;
    o.key_file = f.etcd_key;
    return o;
}

PeerConfig peer_of(const NodeRecord& n) {
    PeerConfig p;
    p.public_key = n.public_key;
    p.allowed_ips = n.allowed_ips;
    if (!n.endpoints.empty()) p.endpoint = n.endpoints.front();
    p.connector = to_string(ConnectorKind::Etcd);
    p.groups = n.groups;
    p.lazy = n.lazy;
    return p;
}

}  // namespace

void Agent::fleet_wake_loop() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t w = ::write(fleet_efd_.get(), &one, sizeof(one));
}

void Agent::start_fleet() {
    const FleetOptions& f = opts_.fleet;
    if (!f.enabled()) return;
    check_mesh_name(f.mesh);
    fleet_efd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (fleet_efd_.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    const EtcdOptions eo = etcd_options(f);
    etcd_ = std::make_unique<EtcdClient>(eo);  // throws naming a bad endpoint or TLS file
    fleet_dir_ = std::make_shared<NodeDirectory>(f.mesh);
    FleetSyncCallbacks cb;
    cb.changed = [this](const DirectoryChange& c) {
        {
            std::lock_guard lock(fleet_pending_.mu);
            fleet_pending_.map |= c.map_changed;
            fleet_pending_.moved.insert(fleet_pending_.moved.end(), c.moved.begin(), c.moved.end());
            for (const std::string& r : c.rejected) fleet_pending_.notes.push_back("refused: " + r);
        }
        fleet_wake_loop();
    };
    cb.state = [this](StoreState s, const std::string& detail) {
        {
            std::lock_guard lock(fleet_pending_.mu);
            fleet_pending_.state = s;
            fleet_pending_.notes.push_back(std::string("store ") + to_string(s) + ": " + detail);
        }
        fleet_wake_loop();
    };
    fleet_sync_ = std::make_unique<FleetSync>(*etcd_, eo, fleet_dir_, std::move(cb));
    if (f.map != MapSource::Etcd) return;
    // The first map should have the fleet in it: wait briefly for the first range read.
    const auto until = std::chrono::steady_clock::now() + kFirstReadWait;
    while (fleet_dir_->revision() == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (fleet_dir_->revision() == 0)
        spdlog::warn(
            "etcd: no answer within {} s; starting with the file's peers, the mesh's "
            "follow when the store answers",
            kFirstReadWait.count());
}

WgQuickConfig Agent::with_fleet_peers(WgQuickConfig cfg) const {
    if (!fleet_dir_ || opts_.fleet.map != MapSource::Etcd) return cfg;
    std::unordered_set<WgKey, WgKeyHash> have;
    for (const PeerConfig& p : cfg.peers) have.insert(p.public_key);
    if (cfg.iface.private_key)
        if (auto pub = public_key_of(*cfg.iface.private_key)) have.insert(*pub);
    for (const NodeRecord& n : fleet_dir_->nodes())
        if (have.insert(n.public_key).second) cfg.peers.push_back(peer_of(n));
    return cfg;
}

void Agent::start_registration(const InterfaceConfig& iface) {
    if (!etcd_) return;
    if (!iface.private_key) {
        spdlog::warn("etcd: the interface has no private key in the config; not registering");
        return;
    }
    auto pub = public_key_of(*iface.private_key);
    if (!pub) throw std::runtime_error("etcd: cannot derive the public key to register");
    self_key_ = *pub;
    const WgDevice dev = wg_->get_device();
    {
        std::lock_guard lock(self_mu_);
        self_.public_key = *pub;
        self_.allowed_ips.clear();
        for (const IpPrefix& a : iface.addresses)
            self_.allowed_ips.push_back({a.addr, static_cast<uint8_t>(a.addr.max_prefix())});
        self_.groups = opts_.fleet.groups;
        self_.lazy = opts_.fleet.lazy;
        self_.version = std::string(build_info().version);
        self_.endpoints = opts_.fleet.advertise;
    }
    RegistrationOptions ro;
    ro.mesh = opts_.fleet.mesh;
    ro.ttl = opts_.fleet.lease_ttl;
    const uint16_t port = dev.listen_port;
    ro.self = [this, port, overlay = iface.addresses] {
        std::lock_guard lock(self_mu_);
        NodeRecord r = self_;
        if (opts_.fleet.advertise.empty())
            r.endpoints = host_endpoints(port, opts_.interface, overlay);
        return r;
    };
    ro.problem = [this](const std::string& problem) {
        {
            std::lock_guard lock(fleet_pending_.mu);
            fleet_pending_.notes.push_back(problem.empty() ? "registered in " + opts_.fleet.mesh
                                                           : problem);
        }
        fleet_wake_loop();
    };
    // A stream bound to the old address would hear nothing more: a new one, from where
    // the directory is.
    ro.moved = [this] {
        if (fleet_sync_) fleet_sync_->restart_watch();
    };
    registration_ = std::make_unique<Registration>(*etcd_, std::move(ro));
}

void Agent::on_fleet_events() {
    uint64_t n = 0;
    [[maybe_unused]] ssize_t r = ::read(fleet_efd_.get(), &n, sizeof(n));
    bool map = false;
    std::vector<WgKey> moved;
    std::vector<std::string> notes;
    {
        std::lock_guard lock(fleet_pending_.mu);
        std::swap(map, fleet_pending_.map);
        moved.swap(fleet_pending_.moved);
        notes.swap(fleet_pending_.notes);
        if (fleet_pending_.state) store_state_ = *std::exchange(fleet_pending_.state, std::nullopt);
    }
    for (const std::string& note : notes) spdlog::info("etcd: {}", note);
    if (map && opts_.fleet.map == MapSource::Etcd && cfg_path_) {
        try {
            apply_config(load_wg_quick(*cfg_path_), false);
        } catch (const std::exception& e) {
            spdlog::error("etcd: applying the mesh's map: {} (the running map stays)", e.what());
        }
    }
    for (const WgKey& key : moved) {
        if (!mgr_->find(key)) continue;
        for (const std::string& e : fleet_dir_->endpoints_of(key)) {
            auto ep = SockAddr::parse_numeric(e);
            if (!ep) continue;
            try {
                if (mgr_->peer_moved(key, *ep))
                    spdlog::info("etcd: {} moved to {}; its session follows", key.base64(), e);
            } catch (const std::exception& err) {
                spdlog::warn("etcd: {} moved to {}: {}", key.base64(), e, err.what());
            }
            break;
        }
    }
}

void Agent::stop_fleet() {
    // The registration first: its lease revoked, the others drop this node at once.
    if (registration_) registration_->stop();
    if (fleet_sync_) fleet_sync_->stop();
}

}  // namespace nb::engine
