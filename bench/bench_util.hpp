// Pieces every bench/ program needs: a timer, deterministic peer keys and addresses,
// and a fresh WireGuard interface of the chosen backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/net/ip.hpp"
#include "base/net/rtnl.hpp"

namespace nb::bench {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A distinct key per (i, tag); any 32 bytes are a valid public key.
inline WgKey key_for(uint32_t i, uint8_t tag) {
    WgKey k;
    k.bytes.fill(tag);
    std::memcpy(k.bytes.data(), &i, sizeof i);
    return k;
}

// Peer i's own IPv4 address: 10.<second_octet + i's bits 16..23>.<bits 8..15>.<bits
// 0..7>/32.
inline IpPrefix host(uint8_t second_octet, uint32_t i) {
    IpPrefix p;
    p.addr.family = AF_INET;
    p.addr.bytes = {10, static_cast<uint8_t>(second_octet + (i >> 16)),
                    static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    p.len = 32;
    return p;
}

// Creates `ifname` as kernel WireGuard ("kernel") or wireguard-go (anything else) and
// returns its control backend.
inline std::unique_ptr<WgControl> create_interface(const std::string& backend,
                                                   const std::string& ifname) {
    if (backend == "kernel") {
        link_add_wireguard(ifname);
        return std::make_unique<NetlinkControl>(ifname);
    }
    start_wireguard_go(ifname);
    return std::make_unique<UapiControl>(ifname);
}

}  // namespace nb::bench
