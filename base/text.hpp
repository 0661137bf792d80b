// Small text helpers shared by the parsers.
#pragma once

#include <string_view>

namespace nb {

// Without leading and trailing blanks (space, tab, CR, LF, VT, FF).
inline std::string_view trim(std::string_view s) {
    constexpr std::string_view kBlank = " \t\r\n\v\f";
    const size_t b = s.find_first_not_of(kBlank);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(kBlank) - b + 1);
}

// The value of a base64 digit (RFC 4648's alphabet) or a hex digit (either case), or -1.
inline int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

inline int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace nb
