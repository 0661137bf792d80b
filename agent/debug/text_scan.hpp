// Finding what the anonymizer hides in free text (JSON, NDJSON logs, plain text): IP
// addresses and WireGuard keys, each only where it stands as a token of its own. Pure
// functions on a position in the text, O(1) for a position that starts nothing, so the
// anonymizer can ask at every character and stay one linear pass.
//
// A token starts where the character before it cannot continue it (a letter before
// "1.2.3.4" makes a version "v1.2.3.4", not an address) and must end the same way. A JSON
// escape counts as a separator: in `"\t10.0.0.1"` the 't' belongs to "\t", so the address
// starts after it, and no token starts at the letter of an escape.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "base/net/ip.hpp"

namespace nb::anon {

// A WireGuard key (32 bytes): 44 characters of base64 ending in '=' (configs, status,
// logs), or 64 hex digits (the UAPI socket). Any 32 bytes match, so private and
// preshared keys and SHA-256 digests in hex are found too.
struct KeyToken {
    std::array<uint8_t, 32> bytes{};
    size_t len = 0;    // 44 or 64
    bool hex = false;  // spelled in hex (else base64)
};
std::optional<KeyToken> key_at(std::string_view s, size_t i);

// An IPv4 or IPv6 address as inet_pton reads it. What may follow stays in the text: a
// prefix length ("/24"), a port (":51820", "]:51820"), a zone ("%wg0"), a full stop.
// IPv6 needs two colons at least, so times ("12:34:56") never are; an unbracketed
// "fd00::1:51820" is read as fd00::1 and a port, since 51820 is no 16-bit group.
struct AddressToken {
    IpAddr addr;
    size_t len = 0;  // characters of the address itself
};
std::optional<AddressToken> address_at(std::string_view s, size_t i);

// Whether a registered name may start at i and end before i + len: a name whose first
// (last) character is a letter, digit or '_' needs one that is none before (after) it, as
// a regex \b would, so "db" is not found in "dbus"; never inside a JSON escape.
bool name_fits_at(std::string_view s, size_t i, size_t len);

// False where key_at and address_at surely find nothing: most characters of a text, the
// inside of words. Inline and cheap, for the scan's loop.
inline bool may_start_token(std::string_view s, size_t i) {
    auto alnum = [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    };
    if (!alnum(s[i]) && s[i] != ':' && s[i] != '+' && s[i] != '/') return false;
    // After a letter or digit only where a JSON escape ("\t", "\u0009") may end.
    return i == 0 || !alnum(s[i - 1]) || (i >= 2 && s[i - 2] == '\\') ||
           (i >= 6 && s[i - 6] == '\\');
}

// The 32 bytes of a 44-character base64 key, or nothing if it is not one.
std::optional<std::array<uint8_t, 32>> decode_base64_key(std::string_view b64);

}  // namespace nb::anon
