// Ethernet frames around minimal IPv4/IPv6 UDP packets, for BPF_PROG_TEST_RUN (its
// runner always expects an Ethernet header). Shared by the BPF tests and bench/.
#pragma once

#include <arpa/inet.h>
#include <linux/if_ether.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "base/net/ip.hpp"

namespace nb::test {

inline std::vector<uint8_t> udp_frame(const IpAddr& src, const IpAddr& dst, size_t payload = 8) {
    std::vector<uint8_t> f(ETH_HLEN, 0);
    bool v4 = src.family == AF_INET;
    uint16_t proto = htons(v4 ? ETH_P_IP : ETH_P_IPV6);
    std::memcpy(&f[12], &proto, 2);
    size_t l4 = 8 + payload;
    if (v4) {
        std::vector<uint8_t> h(20, 0);
        h[0] = 0x45;
        uint16_t tot = htons(static_cast<uint16_t>(20 + l4));
        std::memcpy(&h[2], &tot, 2);
        h[8] = 64;
        h[9] = 17;
        std::memcpy(&h[12], src.bytes.data(), 4);
        std::memcpy(&h[16], dst.bytes.data(), 4);
        f.insert(f.end(), h.begin(), h.end());
    } else {
        std::vector<uint8_t> h(40, 0);
        h[0] = 0x60;
        uint16_t pl = htons(static_cast<uint16_t>(l4));
        std::memcpy(&h[4], &pl, 2);
        h[6] = 17;
        h[7] = 64;
        std::memcpy(&h[8], src.bytes.data(), 16);
        std::memcpy(&h[24], dst.bytes.data(), 16);
        f.insert(f.end(), h.begin(), h.end());
    }
    std::vector<uint8_t> udp(l4, 0xab);
    f.insert(f.end(), udp.begin(), udp.end());
    return f;
}

}  // namespace nb::test
