// The pseudonyms one bundle's anonymizer hands out: the n-th distinct IPv4 address,
// IPv6 address or key seen in the bundle gets pseudonym n of its kind. A secret drawn
// per bundle shifts where each kind starts counting, so one address gets different
// pseudonyms in two bundles; within a bundle they still count up one by one.
//
// IPv4, in order: 198.51.100.1-254 and 203.0.113.1-254 (TEST-NET-2 and -3, RFC 5737);
// past those 508, the benchmarking range 198.18.0.0/15 (RFC 2544); past its 130,048, the
// reserved 240.0.0.0/5 (RFC 1112 "class E", routed nowhere). Host parts .0 and .255 are
// never handed out. After all of them (133 million) numbering starts over.
// IPv6: 2001:db8:SSSS::n (RFC 3849), SSSS drawn per bundle, n counting up from the shift.
// Keys: valid WireGuard keys that read as a number, "key01234567" then 'A's and a '='
// (44 characters), so JSON keeps parsing as nbagent's own status and configs do.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/net/ip.hpp"

namespace nb::anon {

class Pseudonyms {
  public:
    explicit Pseudonyms(uint64_t secret);
    IpAddr ipv4(uint64_t n) const;
    IpAddr ipv6(uint64_t n) const;
    std::string key_base64(uint64_t n) const;

  private:
    std::array<uint64_t, 3> v4_shift_{};  // one per IPv4 range, below its size
    uint16_t v6_subnet_ = 0;
    uint64_t v6_shift_ = 0;
    uint64_t key_shift_ = 0;
};

// Addresses that tell nothing about anyone and stay as they are: 0.0.0.0/8, 127.0.0.0/8,
// 255.255.255.255, netmasks (255.255.255.0...), :: and ::1.
bool identifies_nothing(const IpAddr& a);

// Whether `a` is in one of the ranges Pseudonyms::ipv4 hands out (for tests and fuzzing).
bool is_ipv4_pseudonym(const IpAddr& a);

}  // namespace nb::anon
