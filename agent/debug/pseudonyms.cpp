#include "agent/debug/pseudonyms.hpp"

namespace nb::anon {

namespace {

// One range of IPv4 pseudonyms: `blocks` /24s from `base`, hosts .1 to .254 of each.
struct V4Range {
    uint32_t base;
    uint32_t blocks;
    uint64_t size() const { return uint64_t{blocks} * 254; }
    IpAddr at(uint64_t j) const {
        return IpAddr::v4(base + static_cast<uint32_t>(j / 254) * 256 + 1 +
                          static_cast<uint32_t>(j % 254));
    }
};

// The two TEST-NETs are not adjacent; they are the first range, 2 x 254 addresses.
constexpr uint32_t kTestNet2 = 0xc6336400;          // 198.51.100.0
constexpr uint32_t kTestNet3 = 0xcb007100;          // 203.0.113.0
constexpr V4Range kBenchmark{0xc6120000, 512};      // 198.18.0.0/15
constexpr V4Range kReserved{0xf0000000, 1u << 19};  // 240.0.0.0/5
constexpr uint64_t kTestNets = 2 * 254;
constexpr uint64_t kKeyNumbers = 100'000'000;  // 8 digits

// splitmix64: spreads a seed into independent-looking numbers.
uint64_t mix(uint64_t& state) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

}  // namespace

Pseudonyms::Pseudonyms(uint64_t secret) {
    uint64_t state = secret;
    v4_shift_ = {mix(state) % kTestNets, mix(state) % kBenchmark.size(),
                 mix(state) % kReserved.size()};
    v6_subnet_ = static_cast<uint16_t>(mix(state));
    v6_shift_ = mix(state) % 10'000;  // small: "::1234" reads better than 64 random bits
    key_shift_ = mix(state) % kKeyNumbers;
}

IpAddr Pseudonyms::ipv4(uint64_t n) const {
    n %= kTestNets + kBenchmark.size() + kReserved.size();
    if (n < kTestNets) {
        const uint64_t j = (n + v4_shift_[0]) % kTestNets;
        return IpAddr::v4(j < 254 ? kTestNet2 + 1 + static_cast<uint32_t>(j)
                                  : kTestNet3 + 1 + static_cast<uint32_t>(j - 254));
    }
    n -= kTestNets;
    if (n < kBenchmark.size()) return kBenchmark.at((n + v4_shift_[1]) % kBenchmark.size());
    n -= kBenchmark.size();
    return kReserved.at((n + v4_shift_[2]) % kReserved.size());
}

IpAddr Pseudonyms::ipv6(uint64_t n) const {
    IpAddr a;
    a.family = AF_INET6;
    const uint16_t head[3] = {0x2001, 0x0db8, v6_subnet_};
    for (int k = 0; k < 3; ++k) {
        a.bytes[2 * k] = static_cast<uint8_t>(head[k] >> 8);
        a.bytes[2 * k + 1] = static_cast<uint8_t>(head[k]);
    }
    const uint64_t host = n + v6_shift_ + 1;  // never ::0, the subnet itself
    for (int k = 0; k < 8; ++k) a.bytes[15 - k] = static_cast<uint8_t>(host >> (8 * k));
    return a;
}

std::string Pseudonyms::key_base64(uint64_t n) const {
    // "key" and 8 digits, 'A' (six zero bits) to 43 characters, '=': a valid key, since the
    // 43rd character's two unused bits are zero.
    std::string s = "key00000000";
    uint64_t v = (n + key_shift_) % kKeyNumbers;
    for (size_t k = 10; k >= 3; --k, v /= 10) s[k] = static_cast<char>('0' + v % 10);
    s.append(32, 'A');
    s.push_back('=');
    return s;
}

bool identifies_nothing(const IpAddr& a) {
    if (a.family == AF_INET6) {
        for (int k = 0; k < 15; ++k)
            if (a.bytes[k]) return false;
        return a.bytes[15] <= 1;  // :: and ::1
    }
    const uint32_t v = a.v4_value();
    // 0.0.0.0/8 is "this network", no host's address; it also covers the IPv4 part of
    // :: and ::1 when written "::0.0.0.1".
    if ((v >> 24) == 0 || (v >> 24) == 127) return true;
    // A netmask: ones from the top, then zeros (255.255.255.255 is one too).
    return (v >> 24) == 255 && (~v & (~v + 1)) == 0;
}

bool is_ipv4_pseudonym(const IpAddr& a) {
    if (a.family != AF_INET) return false;
    const uint32_t v = a.v4_value(), host = v & 0xff;
    if (host == 0 || host == 255) return false;
    const uint32_t net = v & 0xffffff00;
    return net == kTestNet2 || net == kTestNet3 || (v & 0xfffe0000) == kBenchmark.base ||
           (v & 0xf8000000) == kReserved.base;
}

}  // namespace nb::anon
