// Links, addresses, routes and tc filters over rtnetlink (NETLINK_ROUTE, via libmnl).
// Every call opens its own socket in the calling thread's network namespace.
#pragma once

#include <linux/rtnetlink.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/net/ip.hpp"

namespace nb {

// The message names what was attempted and the kernel's reason (its extended-ack text
// when it sent one).
struct NetlinkError : std::runtime_error {
    NetlinkError(const std::string& what, int error)
        : std::runtime_error(what), error_code(error) {}
    int error_code;  // positive errno, 0 for a malformed reply
};

std::optional<int> link_index(const std::string& name);
void link_set_up(const std::string& name);
void link_set_mtu(const std::string& name, uint32_t mtu);
void link_set_txqueuelen(const std::string& name, uint32_t len);
// Kernel WireGuard link; fails with EOPNOTSUPP where the kernel has no WireGuard.
void link_add_wireguard(const std::string& name);
void link_delete(const std::string& name);
// IFLA_INFO_KIND ("wireguard", "tun", "dummy"...), "" for links without one.
std::string link_kind(const std::string& name);
// Address with its prefix length as given (host bits kept). Already present is fine.
void addr_add(const std::string& name, const IpPrefix& addr_with_len);
std::vector<IpPrefix> addr_list(const std::string& name);
// The routing protocol nbagent marks its own routes with (`ip route` shows "proto 110";
// unassigned in iproute2's rt_protos). Routes it finds with this mark after a crash or a
// restart are known to be its own.
inline constexpr uint8_t kNbRouteProtocol = 110;

// Route to `dst` through the link, marked kNbRouteProtocol. Already present is fine.
void route_add(const std::string& name, const IpPrefix& dst, uint32_t table = RT_TABLE_MAIN);
void route_del(const std::string& name, const IpPrefix& dst, uint32_t table = RT_TABLE_MAIN);

struct LinkRoute {
    IpPrefix dst;
    uint8_t protocol = 0;  // RTPROT_*: who made it (kNbRouteProtocol: nbagent)
};
// The unicast routes of `table` whose only output is the link (IPv4 and IPv6).
std::vector<LinkRoute> route_list(const std::string& name, uint32_t table = RT_TABLE_MAIN);

// A filter on a clsact hook, as the kernel lists it.
struct TcFilter {
    uint16_t priority = 0;
    uint16_t protocol = 0;  // ETH_P_*, host byte order
    uint32_t handle = 0;
    std::string kind;      // "bpf", "u32", "matchall"...
    uint32_t bpf_id = 0;   // cls_bpf: its program's id
    std::string bpf_name;  // cls_bpf: the name tc gave it ("file.o:[sec]")
};
// The filters of chain 0 (the one packets enter) on the device's clsact ingress or
// egress hook, in the order the kernel runs them; none without a clsact qdisc.
std::vector<TcFilter> tc_filter_list(int ifindex, bool ingress);

}  // namespace nb
