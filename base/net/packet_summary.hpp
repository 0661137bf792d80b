// A one-line view of an IP packet for trace output.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "base/net/ip.hpp"

namespace nb {

struct PacketSummary {
    int family = 0;  // AF_INET or AF_INET6
    IpAddr src, dst;
    uint8_t proto = 0;              // IPPROTO_*; for IPv6 the first header after hop-by-hop,
                                    // routing and destination options (and a first fragment's)
    uint16_t sport = 0, dport = 0;  // TCP/UDP only, 0 when not available

    // "udp 10.0.0.1:5000 -> 10.0.0.2:53", "icmpv6 fd00::1 -> fd00::2", "proto 47 ...".
    std::string str() const;
};

// nullopt when the bytes are not an IPv4/IPv6 packet with a complete network header.
std::optional<PacketSummary> summarize_packet(std::span<const uint8_t> ip_packet);

}  // namespace nb
