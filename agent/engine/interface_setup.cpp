// Interface set-up: the WireGuard backend, addresses, MTU and routes, the peers as
// a config or the device has them, and the state file of endpoints.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/engine/agent.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/fault_point.hpp"
#include "base/memory.hpp"
#include "base/net/rtnl.hpp"
#include "base/printable.hpp"

namespace nb::engine {

std::vector<PeerSpec> specs_from_config(WgQuickConfig&& cfg) {
    std::vector<PeerSpec> out;
    out.reserve(cfg.peers.size());
    for (auto& pc : cfg.peers) {
        PeerSpec s;
        s.wg.public_key = pc.public_key;
        s.wg.preshared_key = pc.preshared_key;
        s.wg.allowed_ips = std::move(pc.allowed_ips);
        s.endpoint = std::move(pc.endpoint);
        s.keepalive = pc.persistent_keepalive;
        s.connector = std::move(pc.connector);
        s.groups = std::move(pc.groups);
        s.lazy = pc.lazy;
        s.inactivity_threshold = pc.inactivity_threshold;
        out.push_back(std::move(s));
    }
    std::vector<PeerConfig>().swap(cfg.peers);
    return out;
}

std::vector<PeerSpec> specs_from_device(const WgDevice& dev) {
    std::vector<PeerSpec> out;
    out.reserve(dev.peers.size());
    for (const auto& p : dev.peers) {
        PeerSpec s;
        s.wg.public_key = p.public_key;
        s.wg.preshared_key = p.preshared_key;
        s.wg.allowed_ips = p.allowed_ips;
        if (p.endpoint) s.endpoint = p.endpoint->str();
        s.keepalive = p.persistent_keepalive;
        out.push_back(std::move(s));
    }
    return out;
}

std::unique_ptr<WgControl> userspace_control(const RunOptions& opts, bool started_here) {
    WgHealth::Options o;
    o.interface = opts.interface;
    o.timeout = opts.wg_timeout;
    o.restart = started_here;
    return std::make_unique<WgHealth>(o);
}

InterfaceConfig interface_as_it_is(const std::string& name, const WgDevice& dev) {
    InterfaceConfig ic;
    ic.private_key = dev.private_key;
    if (dev.listen_port) ic.listen_port = dev.listen_port;
    if (dev.fwmark) ic.fwmark = dev.fwmark;
    ic.addresses = addr_list(name);
    std::ifstream f("/sys/class/net/" + name + "/mtu");
    uint32_t mtu = 0;
    if (f >> mtu) ic.mtu = mtu;
    return ic;
}

std::unique_ptr<WgControl> open_interface(const RunOptions& opts, bool can_create, bool& created) {
    created = false;
    const std::string& name = opts.interface;
    if (link_index(name)) {
        // An existing interface decides the backend; --wg only has to agree with it.
        if (link_kind(name) == "wireguard") {
            if (opts.wg_mode == WgMode::Userspace)
                throw std::runtime_error(name + " is kernel WireGuard (--wg userspace)");
            return std::make_unique<NetlinkControl>(name);
        }
        if (opts.wg_mode == WgMode::Kernel)
            throw std::runtime_error(name + " is not a kernel WireGuard interface (--wg kernel)");
        if (!uapi_socket_exists(name))
            throw std::runtime_error(name + " exists but is not a WireGuard interface (no " +
                                     "kernel WireGuard, no wireguard-go UAPI socket)");
        return userspace_control(opts, false);
    }
    if (!can_create)
        throw std::runtime_error("interface " + name +
                                 " does not exist; give -c FILE to create it from a config");
    // As wg-quick: kernel WireGuard where the kernel has it, wireguard-go otherwise.
    bool kernel = opts.wg_mode == WgMode::Kernel ||
                  (opts.wg_mode == WgMode::Auto && kernel_wireguard_available());
    if (kernel) {
        link_add_wireguard(name);
        created = true;
        return std::make_unique<NetlinkControl>(name);
    }
    if (!wireguard_go_available())
        throw std::runtime_error("cannot create " + name + ": no kernel WireGuard and " +
                                 wireguard_go_program() + " not found (install wireguard-go)");
    start_wireguard_go(name);
    created = true;
    return userspace_control(opts, true);
}

void apply_interface_config(const RunOptions& opts, const InterfaceConfig& iface,
                            const std::vector<IpPrefix>& routes) {
    const std::string& name = opts.interface;
    if (iface.mtu) link_set_mtu(name, *iface.mtu);
    for (const auto& a : iface.addresses) addr_add(name, a);
    link_set_up(name);
    for (const auto& ip : routes) route_add(name, ip);
}

DeviceUpdate changed_settings(const InterfaceConfig& want, const InterfaceConfig* have) {
    DeviceUpdate u;
    if (want.private_key && (!have || have->private_key != want.private_key))
        u.private_key = want.private_key;
    if (want.listen_port && (!have || have->listen_port != want.listen_port))
        u.listen_port = want.listen_port;
    if (want.fwmark && (!have || have->fwmark != want.fwmark)) u.fwmark = want.fwmark;
    return u;
}

void add_new_addresses(const std::string& name, const InterfaceConfig* old,
                       const InterfaceConfig& now) {
    auto has = [](const std::vector<IpPrefix>& v, const IpPrefix& a) {
        return std::find(v.begin(), v.end(), a) != v.end();
    };
    for (const auto& a : now.addresses)
        if (!old || !has(old->addresses, a)) addr_add(name, a);
    if (!old) return;
    // Someone else may rely on it: nbagent only adds addresses.
    for (const auto& a : old->addresses)
        if (!has(now.addresses, a))
            spdlog::warn("address {} is no longer in the config; nbagent leaves it on {}", a.str(),
                         name);
}

void set_changed_mtu(const std::string& name, const InterfaceConfig* old,
                     const InterfaceConfig& now) {
    if (now.mtu && (!old || old->mtu != now.mtu)) link_set_mtu(name, *now.mtu);
}

uint32_t capacity_for(size_t n) {
    // Headroom for peers added later without reloading the programs.
    return static_cast<uint32_t>(std::max<size_t>(4096, n + n / 4));
}

std::vector<IpPrefix> routed_prefixes(std::vector<IpPrefix> all, bool warn_default,
                                      const std::string& name) {
    std::erase_if(all, [&](const IpPrefix& ip) {
        if (ip.len != 0) return false;
        if (warn_default)
            spdlog::warn("not routing {} through {}: default routes are left to the operator",
                         ip.str(), name);
        return true;
    });
    std::sort(all.begin(), all.end());
    return all;
}

std::vector<IpPrefix> allowed_ips_of(const WgQuickConfig& cfg) {
    std::vector<IpPrefix> out;
    for (const auto& peer : cfg.peers)
        out.insert(out.end(), peer.allowed_ips.begin(), peer.allowed_ips.end());
    return out;
}

void Agent::sync_routes(const std::vector<IpPrefix>& old_map, const std::vector<IpPrefix>& want,
                        bool add) {
    const std::string& dev = opts_.interface;
    std::vector<LinkRoute> have;
    try {
        have = route_list(dev);
    } catch (const std::exception& e) {
        // Without the kernel's list, the old map is the best guess of what is there.
        spdlog::warn("listing routes via {}: {}", dev, e.what());
        for (const auto& p : old_map) have.push_back({p, kNbRouteProtocol});
    }
    auto in = [](const std::vector<IpPrefix>& v, const IpPrefix& p) {
        return std::binary_search(v.begin(), v.end(), p);
    };
    std::vector<IpPrefix> present;
    size_t removed = 0;
    for (const auto& r : have) {
        present.push_back(r.dst);
        if (in(want, r.dst) || (r.protocol != kNbRouteProtocol && !in(old_map, r.dst))) continue;
        try {
            route_del(dev, r.dst);
            ++removed;
        } catch (const std::exception& e) {
            spdlog::warn("removing route {} via {}: {}", r.dst.str(), dev, e.what());
        }
    }
    if (removed) spdlog::info("removed {} route(s) via {} that no peer owns", removed, dev);
    if (!add) return;
    std::sort(present.begin(), present.end());
    for (const auto& p : want) {
        if (in(present, p)) continue;
        try {
            route_add(dev, p);
        } catch (const std::exception& e) {
            spdlog::warn("route {} via {}: {}", p.str(), dev, e.what());
        }
    }
}

void Agent::store_endpoints(const std::vector<PeerSpec>& specs, const std::string& consequence) {
    try {
        save_peer_state(state_path_, specs);
    } catch (const std::exception& e) {
        // No peer may lose its endpoint in WireGuard unless a restart can bring it back.
        throw std::runtime_error("cannot store the peers' endpoints (" + std::string(e.what()) +
                                 "); " + consequence +
                                 ": no endpoint may be forgotten that "
                                 "is not safely stored");
    }
}

// wireguard-go reads its tun device one packet at a time, and the tun queue (txqueuelen
// 500) drops what does not fit. The UDP engine's trigger is the initiation wireguard-go
// builds for the first packet to an idle peer, so a burst to many idle peers outran it
// and their peers never woke. The BPF engine holds packets in tc, before the queue, but
// re-injects them into it when wakes complete: under a sweep of idle peers' addresses
// hundreds complete at once, and a full queue refused the replays (ENOBUFS), a real
// peer's first packet among them. One queue slot per peer, at most 16384 (a pointer each
// while empty). Only raised, never lowered.
void Agent::widen_tun_queue(size_t peers) {
    try {
        if (link_kind(opts_.interface) == "wireguard") return;  // no tun queue to outrun
        std::ifstream f("/sys/class/net/" + opts_.interface + "/tx_queue_len");
        uint32_t now = 0;
        if (!(f >> now)) return;
        auto want = static_cast<uint32_t>(std::clamp<size_t>(peers, 1000, 16384));
        if (now >= want) return;
        link_set_txqueuelen(opts_.interface, want);
        spdlog::info(
            "txqueuelen of {} raised from {} to {} (wireguard-go reads one packet at "
            "a time; wakes in bulk must not overflow it)",
            opts_.interface, now, want);
    } catch (const std::exception& e) {
        spdlog::warn("raising the txqueuelen of {}: {}", opts_.interface, e.what());
    }
}

}  // namespace nb::engine
