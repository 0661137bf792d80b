#include "base/net/ip.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace nb {

namespace {

// Digits only (no sign, no spaces), at most `max_digits` of them.
std::optional<unsigned> parse_small_uint(std::string_view s, size_t max_digits) {
    if (s.empty() || s.size() > max_digits) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

// True if the first `len` bits of a and b are equal.
bool same_leading_bits(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b,
                       unsigned len) {
    unsigned full = len / 8;
    if (std::memcmp(a.data(), b.data(), full) != 0) return false;
    unsigned rest = len % 8;
    if (rest == 0) return true;
    uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

// Shared by split_host_port and parse_numeric, which must also know whether the host
// was bracketed (only IPv6 literals may be).
bool split_impl(std::string_view text, std::string& host, uint16_t& port, bool& bracketed) {
    std::string_view h, p;
    if (!text.empty() && text.front() == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return false;
        h = text.substr(1, close - 1);
        p = text.substr(close + 2);
        bracketed = true;
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return false;
        h = text.substr(0, colon);
        p = text.substr(colon + 1);
        // An unbracketed IPv6 address is ambiguous with the port separator.
        if (h.find(':') != std::string_view::npos) return false;
        bracketed = false;
    }
    if (h.empty() || h.find_first_of("[]") != std::string_view::npos) return false;
    auto v = parse_small_uint(p, 5);
    if (!v || *v == 0 || *v > 65535) return false;
    host.assign(h);
    port = static_cast<uint16_t>(*v);
    return true;
}

// Writes v in decimal (1 to 3 digits) to out; returns how many.
size_t write_dec_u8(uint8_t v, char* out) {
    size_t n = 0;
    if (v >= 100) out[n++] = static_cast<char>('0' + v / 100);
    if (v >= 10) out[n++] = static_cast<char>('0' + v / 10 % 10);
    out[n++] = static_cast<char>('0' + v % 10);
    return n;
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    // inet_pton needs a terminated string; an embedded NUL would silently truncate it.
    if (text.empty() || text.size() >= INET6_ADDRSTRLEN ||
        text.find('\0') != std::string_view::npos)
        return std::nullopt;
    std::string s(text);
    IpAddr a;
    if (s.find(':') == std::string::npos) {
        if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
        a.family = AF_INET;
    } else {
        if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) != 1) return std::nullopt;
        a.family = AF_INET6;
    }
    return a;
}

void IpAddr::append_to(std::string& out) const {
    if (family == AF_INET) {
        // inet_ntop formats IPv4 through sprintf: slow for a status of 100k peers.
        // Digits are written by hand so every write is visibly within "255.255.255.255":
        // to_chars' error path (returning the buffer's end) let GCC 12 at -O3 see a
        // write past it (-Wstringop-overflow).
        char buf[15];
        size_t n = 0;
        for (int i = 0; i < 4; ++i) {
            if (i) buf[n++] = '.';
            n += write_dec_u8(bytes[i], buf + n);
        }
        out.append(buf, n);
        return;
    }
    // IPv6 as inet_ntop writes it (RFC 5952: lower-case hex, the longest run of two or
    // more zero groups as "::", the first of equal runs), without its sprintf per group.
    // Addresses starting with 80 zero bits may be written with an embedded IPv4 address:
    // those are left to inet_ntop itself.
    uint16_t w[8];
    for (int i = 0; i < 8; ++i) w[i] = static_cast<uint16_t>(bytes[2 * i] << 8 | bytes[2 * i + 1]);
    if (!(w[0] | w[1] | w[2] | w[3] | w[4])) {
        char buf[INET6_ADDRSTRLEN] = {};
        out.append(inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf) ? buf : "?");
        return;
    }
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i]) {
            ++i;
            continue;
        }
        int j = i;
        while (j < 8 && !w[j]) ++j;
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    if (best_len < 2) best = -1;
    char buf[INET6_ADDRSTRLEN];
    char* p = buf;
    for (int i = 0; i < 8; ++i) {
        if (i == best) {
            // One ':' here; the group after the run adds its own, or the end does below.
            *p++ = ':';
            i += best_len - 1;
            continue;
        }
        if (i) *p++ = ':';
        p = std::to_chars(p, buf + sizeof buf, w[i], 16).ptr;
    }
    if (best != -1 && best + best_len == 8) *p++ = ':';
    out.append(buf, static_cast<size_t>(p - buf));
}

std::string IpAddr::str() const {
    std::string s;
    append_to(s);
    return s;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text, bool* had_host_bits) {
    size_t slash = text.find('/');
    auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    unsigned len = static_cast<unsigned>(addr->max_prefix());
    if (slash != std::string_view::npos) {
        auto v = parse_small_uint(text.substr(slash + 1), 3);
        if (!v || *v > len) return std::nullopt;
        len = *v;
    }
    IpPrefix p;
    p.addr.family = addr->family;
    p.len = static_cast<uint8_t>(len);
    unsigned full = len / 8;
    std::memcpy(p.addr.bytes.data(), addr->bytes.data(), full);
    if (len % 8 != 0)
        p.addr.bytes[full] = addr->bytes[full] & static_cast<uint8_t>(0xff << (8 - len % 8));
    if (had_host_bits) *had_host_bits = p.addr != *addr;
    return p;
}

void IpPrefix::append_to(std::string& out) const {
    addr.append_to(out);
    char buf[4] = {'/'};
    out.append(buf, static_cast<size_t>(std::to_chars(buf + 1, buf + sizeof buf, len).ptr - buf));
}

std::string IpPrefix::str() const {
    std::string s;
    append_to(s);
    return s;
}

bool IpPrefix::contains(const IpAddr& a) const {
    return a.family == addr.family && same_leading_bits(addr.bytes, a.bytes, len);
}

bool IpPrefix::overlaps(const IpPrefix& other) const {
    return other.addr.family == addr.family &&
           same_leading_bits(addr.bytes, other.addr.bytes, std::min(len, other.len));
}

SockAddr SockAddr::from(const IpAddr& ip, uint16_t port) {
    SockAddr s;
    if (ip.family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&s.ss);
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        std::memcpy(&in->sin_addr, ip.bytes.data(), 4);
        s.len = sizeof(sockaddr_in);
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&s.ss);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        std::memcpy(&in6->sin6_addr, ip.bytes.data(), 16);
        s.len = sizeof(sockaddr_in6);
    }
    return s;
}

std::optional<SockAddr> SockAddr::parse_numeric(std::string_view text) {
    std::string host;
    uint16_t port = 0;
    bool bracketed = false;
    if (!split_impl(text, host, port, bracketed)) return std::nullopt;
    auto ip = IpAddr::parse(host);
    if (!ip || bracketed != (ip->family == AF_INET6)) return std::nullopt;
    return from(*ip, port);
}

IpAddr SockAddr::ip() const {
    IpAddr a;
    if (ss.sa.sa_family == AF_INET6) {
        a.family = AF_INET6;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
    } else {
        a.family = AF_INET;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, 4);
    }
    return a;
}

uint16_t SockAddr::port() const {
    if (ss.sa.sa_family == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

void SockAddr::append_to(std::string& out) const {
    const bool v6 = ss.sa.sa_family == AF_INET6;
    if (v6) out.push_back('[');
    ip().append_to(out);
    char buf[8] = {};
    char* p = buf;
    if (v6) *p++ = ']';
    *p++ = ':';
    out.append(buf, static_cast<size_t>(std::to_chars(p, buf + sizeof buf, port()).ptr - buf));
}

std::string SockAddr::str() const {
    std::string s;
    append_to(s);
    return s;
}

bool split_host_port(std::string_view text, std::string& host, uint16_t& port) {
    bool bracketed = false;
    return split_impl(text, host, port, bracketed);
}

}  // namespace nb
