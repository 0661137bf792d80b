#include "base/net/packet_summary.hpp"

#include <netinet/in.h>

#include <algorithm>

namespace nb {

namespace {

uint16_t load16(std::span<const uint8_t> p, size_t off) {
    return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

IpAddr address(int family, std::span<const uint8_t> bytes) {
    IpAddr a;
    a.family = family;
    std::copy(bytes.begin(), bytes.end(), a.bytes.begin());
    return a;
}

}  // namespace

std::optional<PacketSummary> summarize_packet(std::span<const uint8_t> p) {
    if (p.empty()) return std::nullopt;
    PacketSummary s;
    size_t off = 0;
    bool first_fragment = true;
    if (p[0] >> 4 == 4) {
        size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
        if (p.size() < 20 || ihl < 20 || ihl > p.size()) return std::nullopt;
        s.family = AF_INET;
        s.src = address(AF_INET, p.subspan(12, 4));
        s.dst = address(AF_INET, p.subspan(16, 4));
        s.proto = p[9];
        first_fragment = (load16(p, 6) & 0x1fff) == 0;
        off = ihl;
    } else if (p[0] >> 4 == 6) {
        if (p.size() < 40) return std::nullopt;
        s.family = AF_INET6;
        s.src = address(AF_INET6, p.subspan(8, 16));
        s.dst = address(AF_INET6, p.subspan(24, 16));
        s.proto = p[6];
        off = 40;
        // Skip the common extension headers as far as they are in the buffer.
        for (;;) {
            if (s.proto == IPPROTO_HOPOPTS || s.proto == IPPROTO_ROUTING ||
                s.proto == IPPROTO_DSTOPTS) {
                if (off + 2 > p.size()) break;
                size_t len = (size_t{p[off + 1]} + 1) * 8;
                s.proto = p[off];
                off += len;
            } else if (s.proto == IPPROTO_FRAGMENT) {
                if (off + 8 > p.size()) break;
                s.proto = p[off];
                first_fragment = (load16(p, off + 2) & 0xfff8) == 0;
                off += 8;
            } else {
                break;
            }
        }
    } else {
        return std::nullopt;
    }
    if ((s.proto == IPPROTO_TCP || s.proto == IPPROTO_UDP) && first_fragment &&
        off + 4 <= p.size()) {
        s.sport = load16(p, off);
        s.dport = load16(p, off + 2);
    }
    return s;
}

std::string PacketSummary::str() const {
    std::string name;
    switch (proto) {
        case IPPROTO_TCP:
            name = "tcp";
            break;
        case IPPROTO_UDP:
            name = "udp";
            break;
        case IPPROTO_ICMP:
            name = "icmp";
            break;
        case IPPROTO_ICMPV6:
            name = "icmpv6";
            break;
        default:
            name = "proto " + std::to_string(proto);
            break;
    }
    // Appended piece by piece: `"[" + a.str()` inserts before a temporary, which GCC 12
    // at -O3 reports as an overlapping memcpy (-Wrestrict, GCC PR105651).
    auto endpoint = [this](const IpAddr& a, uint16_t port) {
        std::string s;
        if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
            a.append_to(s);
            return s;
        }
        if (family == AF_INET6) s += '[';
        a.append_to(s);
        s += family == AF_INET6 ? "]:" : ":";
        s += std::to_string(port);
        return s;
    };
    return name + " " + endpoint(src, sport) + " -> " + endpoint(dst, dport);
}

}  // namespace nb
