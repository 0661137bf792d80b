// Where the others reach this node: the host's own addresses with WireGuard's listen
// port, as the registration publishes them when no --advertise list is given. Asked
// again at every keepalive, so a new underlay address reaches the fleet by itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/net/ip.hpp"

namespace nb {

// "ip:port" ("[ip6]:port") for each address of an interface that is up, in this network
// namespace: not loopback, not link-local, not on `skip_interface` (WireGuard's own) and
// not inside `overlay` (the WireGuard addresses, wherever they sit). IPv4 first.
std::vector<std::string> host_endpoints(uint16_t port, std::string_view skip_interface,
                                        const std::vector<IpPrefix>& overlay);

}  // namespace nb
