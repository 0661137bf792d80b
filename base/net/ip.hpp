// IP addresses, prefixes and socket addresses as the agent passes them around.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nb {

struct IpAddr {
    int family = AF_INET;             // AF_INET or AF_INET6
    std::array<uint8_t, 16> bytes{};  // IPv4 in the first 4 bytes, rest zero

    static std::optional<IpAddr> parse(std::string_view text);
    // str() appended to `out`, without a temporary string (status lists every peer).
    void append_to(std::string& out) const;
    // IPv4 from and to a number in host byte order (10.0.0.1 is 0x0a000001).
    static IpAddr v4(uint32_t host_order) {
        IpAddr a;
        for (int i = 0; i < 4; ++i) a.bytes[i] = static_cast<uint8_t>(host_order >> (24 - 8 * i));
        return a;
    }
    uint32_t v4_value() const {
        return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) |
               bytes[3];
    }
    std::string str() const;
    int max_prefix() const { return family == AF_INET ? 32 : 128; }
    auto operator<=>(const IpAddr&) const = default;
};

struct IpPrefix {
    IpAddr addr;  // host bits are always zero (normalized on parse)
    uint8_t len = 0;

    // "10.0.0.0/24", "fd00::1" (host route if no length). Host bits are cleared;
    // `had_host_bits` tells the caller so it can warn.
    static std::optional<IpPrefix> parse(std::string_view text, bool* had_host_bits = nullptr);
    std::string str() const;
    void append_to(std::string& out) const;
    bool is_host() const { return len == addr.max_prefix(); }
    bool contains(const IpAddr& a) const;
    bool overlaps(const IpPrefix& other) const;
    auto operator<=>(const IpPrefix&) const = default;
};

// A resolved UDP endpoint.
struct SockAddr {
    // Only IPv4 and IPv6 are endpoints: 28 bytes where sockaddr_storage takes 128, and
    // a map of a million peers holds two of these per peer.
    union Storage {
        sockaddr sa;
        sockaddr_in v4;
        sockaddr_in6 v6;
    };
    Storage ss{};
    socklen_t len = 0;

    static SockAddr from(const IpAddr& ip, uint16_t port);
    // Numeric "1.2.3.4:51820" or "[fd00::1]:51820"; no DNS.
    static std::optional<SockAddr> parse_numeric(std::string_view text);
    int family() const { return ss.sa.sa_family; }
    IpAddr ip() const;
    uint16_t port() const;
    std::string str() const;  // same format parse_numeric reads
    void append_to(std::string& out) const;
    bool operator==(const SockAddr& o) const { return str() == o.str(); }
};

// Splits "host:port" / "[v6]:port" into its parts; false if malformed or the port is
// not 1..65535.
bool split_host_port(std::string_view text, std::string& host, uint16_t& port);

}  // namespace nb
