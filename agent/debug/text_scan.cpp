#include "agent/debug/text_scan.hpp"

#include <string>

#include "base/text.hpp"

namespace nb::anon {

namespace {

enum : uint8_t {
    kDigit = 1,
    kHexLetter = 2,  // a-f, A-F
    kLetter = 4,     // every ASCII letter, hex or not
    kB64Sym = 8,     // '+' and '/'
    kDot = 16,
    kColon = 32,
    kUnderscore = 64,
    kEquals = 128,
};
constexpr uint8_t kAlnum = kDigit | kLetter;
constexpr uint8_t kWord = kAlnum | kUnderscore;
constexpr uint8_t kBase64 = kAlnum | kB64Sym;
constexpr uint8_t kAddressChar = kDigit | kHexLetter | kDot | kColon;

constexpr std::array<uint8_t, 256> kClasses = [] {
    std::array<uint8_t, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = kDigit;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = kLetter | (c <= 'f' ? kHexLetter : 0);
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = kLetter | (c <= 'F' ? kHexLetter : 0);
    t['+'] = t['/'] = kB64Sym;
    t['.'] = kDot;
    t[':'] = kColon;
    t['_'] = kUnderscore;
    t['='] = kEquals;
    return t;
}();

uint8_t cls(char c) {
    return kClasses[static_cast<unsigned char>(c)];
}

// Whether s[p] is escaped: an odd number of backslashes right before it.
bool escaped(std::string_view s, size_t p) {
    size_t n = 0;
    while (n < p && s[p - 1 - n] == '\\') ++n;
    return n % 2 == 1;
}

// Whether a JSON escape ends right before i: "\n", "\t"... or "\u00e9".
bool after_escape(std::string_view s, size_t i) {
    const char c = i >= 2 ? s[i - 1] : 0;
    const bool letter = c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't';
    if (letter && escaped(s, i - 1)) return true;
    if (i < 6 || s[i - 5] != 'u' || !escaped(s, i - 5)) return false;
    for (size_t k = i - 4; k < i; ++k)
        if (!(cls(s[k]) & (kDigit | kHexLetter))) return false;
    return true;
}

// Whether s[i] is the second character of a JSON escape (the 'n' of "\n"): replacing
// from there would leave a bare backslash before the replacement.
bool in_escape(std::string_view s, size_t i) {
    static constexpr std::string_view kEscapable = "bfnrtu\"/\\";
    return kEscapable.find(s[i]) != std::string_view::npos && escaped(s, i);
}

// Whether a token may start at i: the character before it is none of `joins` (or ends a
// JSON escape), and s[i] is not inside an escape.
bool starts_at(std::string_view s, size_t i, uint8_t joins) {
    if (i == 0) return true;
    if (in_escape(s, i)) return false;
    return !(cls(s[i - 1]) & joins) || after_escape(s, i);
}

// Whether a token may end right before i: s[i] is none of `joins`.
bool ends_at(std::string_view s, size_t i, uint8_t joins) {
    return i >= s.size() || !(cls(s[i]) & joins);
}

std::optional<std::array<uint8_t, 32>> decode_hex_key(std::string_view hex) {
    std::array<uint8_t, 32> b{};
    for (size_t k = 0; k < 32; ++k) {
        const int hi = hex_value(hex[2 * k]), lo = hex_value(hex[2 * k + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        b[k] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return b;
}

std::optional<IpAddr> parse_v6(std::string_view c) {
    size_t colons = 0;
    for (char ch : c) colons += ch == ':';
    if (colons < 2) return std::nullopt;
    auto a = IpAddr::parse(c);
    if (a && a->family == AF_INET6) return a;
    return std::nullopt;
}

// The longest IPv6 text: 8 groups of 4 with 7 colons, or 6 groups and an IPv4 tail.
constexpr size_t kMaxV6Text = 45;

std::optional<AddressToken> ipv6_at(std::string_view s, size_t i) {
    size_t j = i;
    // One character more than an address has: a trailing '.' or ':' that is not its own.
    while (j < s.size() && j - i <= kMaxV6Text + 1 && (cls(s[j]) & kAddressChar)) ++j;
    if (j - i > kMaxV6Text + 1 || !ends_at(s, j, kWord)) return std::nullopt;
    std::string_view c = s.substr(i, j - i);
    while (!c.empty() && c.back() == '.') c.remove_suffix(1);
    if (auto a = parse_v6(c)) return AddressToken{*a, c.size()};
    // "fd00::1:" at the end of a sentence, "fd00::1:51820" without brackets.
    if (c.size() > 2 && c.back() == ':' && c[c.size() - 2] != ':') {
        if (auto a = parse_v6(c.substr(0, c.size() - 1))) return AddressToken{*a, c.size() - 1};
    }
    const size_t colon = c.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const std::string_view port = c.substr(colon + 1);
    if (port.empty() || port.size() > 5) return std::nullopt;
    for (char ch : port)
        if (!(cls(ch) & kDigit)) return std::nullopt;
    if (auto a = parse_v6(c.substr(0, colon))) return AddressToken{*a, colon};
    return std::nullopt;
}

std::optional<AddressToken> ipv4_at(std::string_view s, size_t i) {
    if (!(cls(s[i]) & kDigit)) return std::nullopt;
    size_t j = i, dots = 0;
    while (j < s.size() && (cls(s[j]) & (kDigit | kDot))) dots += s[j++] == '.';
    size_t len = j - i;
    while (s[i + len - 1] == '.') {  // a full stop, or "1.2.3.4.nip.io"
        --len;
        --dots;
    }
    if (dots != 3 || len > 15 || (len == j - i && !ends_at(s, j, kWord))) return std::nullopt;
    auto a = IpAddr::parse(s.substr(i, len));
    if (!a || a->family != AF_INET) return std::nullopt;
    return AddressToken{*a, len};
}

}  // namespace

std::optional<std::array<uint8_t, 32>> decode_base64_key(std::string_view b64) {
    // 43 characters of 6 bits and a '='; the last one's 2 low bits are beyond the 256
    // bits of the key and must be zero, so each key has one spelling.
    if (b64.size() != 44 || b64[43] != '=') return std::nullopt;
    std::array<uint8_t, 32> b{};
    uint32_t acc = 0;
    int bits = 0;
    size_t out = 0;
    for (size_t k = 0; k < 43; ++k) {
        const int v = base64_value(b64[k]);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            b[out++] = static_cast<uint8_t>(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return std::nullopt;
    return b;
}

std::optional<KeyToken> key_at(std::string_view s, size_t i) {
    if (i >= s.size() || !(cls(s[i]) & kBase64) || !starts_at(s, i, kBase64)) return std::nullopt;
    const size_t left = s.size() - i;
    if (left >= 44 && s[i + 43] == '=' && ends_at(s, i + 44, kBase64 | kEquals)) {
        if (auto b = decode_base64_key(s.substr(i, 44))) return KeyToken{*b, 44, false};
    }
    if (left >= 64 && ends_at(s, i + 64, kWord)) {
        if (auto b = decode_hex_key(s.substr(i, 64))) return KeyToken{*b, 64, true};
    }
    return std::nullopt;
}

std::optional<AddressToken> address_at(std::string_view s, size_t i) {
    if (i >= s.size() || !(cls(s[i]) & kAddressChar) || !starts_at(s, i, kAlnum | kDot))
        return std::nullopt;
    // Not IPv6 right after "::": "a::b::c" is no address, and "b::c" in it is none either.
    // IPv4 may follow anything: "::1.2.3.4" that is no IPv6 must not keep its address.
    const bool after_double_colon = i >= 2 && s[i - 1] == ':' && s[i - 2] == ':';
    if (!after_double_colon) {
        if (auto a = ipv6_at(s, i)) return a;
    }
    return ipv4_at(s, i);
}

bool name_fits_at(std::string_view s, size_t i, size_t len) {
    if (i + len > s.size() || len == 0) return false;
    if (cls(s[i]) & kWord) {
        if (!starts_at(s, i, kWord)) return false;
    } else if (in_escape(s, i)) {
        return false;
    }
    return !(cls(s[i + len - 1]) & kWord) || ends_at(s, i + len, kWord);
}

}  // namespace nb::anon
