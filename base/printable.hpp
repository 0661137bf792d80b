// Text that came from outside (a connector's output, a daemon's reply, a client's
// request) made safe to log, trace and send as JSON: valid UTF-8, no terminal escapes.
// A connector that prints 0xff 0xfe or "\e[2J" must not make `status --json` invalid
// JSON, nor clear the operator's terminal when the log is read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nb {

// Length of the well-formed UTF-8 sequence starting at s[i] (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3;
        if (b0 == 0xe0) lo = 0xa0;  // overlong
        if (b0 == 0xed) hi = 0x9f;  // surrogates
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4;
        if (b0 == 0xf0) lo = 0x90;  // overlong
        if (b0 == 0xf4) hi = 0x8f;  // above U+10FFFF
    } else {
        return 0;
    }
    if (s.size() - i < len) return 0;
    const auto b1 = static_cast<unsigned char>(s[i + 1]);
    if (b1 < lo || b1 > hi) return 0;
    for (size_t k = 2; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if (b < 0x80 || b > 0xbf) return 0;
    }
    return len;
}

inline bool is_valid_utf8(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const size_t n = utf8_sequence_length(s, i);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

// `s` as valid, printable UTF-8 of at most about `max_bytes`: control characters
// (C0, DEL, C1), invalid bytes and the bidirectional overrides that can make a log line
// read differently from what it holds are written as \xNN per byte; tab stays. Longer
// text is cut at a character boundary and ends in "...".
inline std::string printable(std::string_view s, size_t max_bytes = 1024) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(s.size() < max_bytes ? s.size() : max_bytes);
    auto escape = [&](size_t i, size_t n) {
        for (size_t k = 0; k < n; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            const char esc[] = {'\\', 'x', kHex[b >> 4], kHex[b & 15]};
            out.append(esc, sizeof esc);
        }
    };
    for (size_t i = 0; i < s.size();) {
        if (out.size() >= max_bytes) {
            out.append("...");
            break;
        }
        const auto b0 = static_cast<unsigned char>(s[i]);
        const size_t n = utf8_sequence_length(s, i);
        if (n == 0) {
            escape(i, 1);
            ++i;
            continue;
        }
        bool hide = false;
        if (n == 1) {
            hide = (b0 < 0x20 && b0 != '\t') || b0 == 0x7f;
        } else if (n == 2) {
            hide = b0 == 0xc2 && static_cast<unsigned char>(s[i + 1]) < 0xa0;  // C1
        } else if (n == 3 && b0 == 0xe2) {
            const uint32_t cp = 0x2000u | ((static_cast<unsigned char>(s[i + 1]) & 0x3fu) << 6) |
                                (static_cast<unsigned char>(s[i + 2]) & 0x3fu);
            hide = (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
        }
        if (hide) {
            escape(i, n);
        } else {
            out.append(s.substr(i, n));
        }
        i += n;
    }
    return out;
}

}  // namespace nb
