// Links, addresses and routes over rtnetlink (NETLINK_ROUTE, via libmnl). Every call
// opens its own socket in the calling thread's network namespace.
#pragma once

#include <linux/rtnetlink.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/net/ip.hpp"

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
// Route to `dst` through the link. Already present is fine for route_add.
void route_add(const std::string& name, const IpPrefix& dst, uint32_t table = RT_TABLE_MAIN);
void route_del(const std::string& name, const IpPrefix& dst, uint32_t table = RT_TABLE_MAIN);

}  // namespace nb
