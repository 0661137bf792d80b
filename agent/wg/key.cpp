#include "agent/wg/key.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <functional>

#include "base/text.hpp"

namespace nb {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

std::optional<WgKey> WgKey::from_base64(std::string_view b64) {
    // 32 bytes are 43 significant characters plus one '='; the 43rd carries 2 unused
    // bits that must be zero, so each key has exactly one accepted spelling.
    if (b64.size() != 44 || b64[43] != '=') return std::nullopt;
    WgKey k;
    uint32_t acc = 0;
    int bits = 0;
    size_t out = 0;
    for (size_t i = 0; i < 43; ++i) {
        int v = base64_value(b64[i]);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            k.bytes[out++] = static_cast<uint8_t>(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return std::nullopt;
    return k;
}

std::optional<WgKey> WgKey::from_hex(std::string_view hex) {
    if (hex.size() != 64) return std::nullopt;
    WgKey k;
    for (size_t i = 0; i < 32; ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        k.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return k;
}

void WgKey::append_base64(std::string& s) const {
    char buf[44];
    char* p = buf;
    uint32_t acc = 0;
    int bits = 0;
    for (uint8_t b : bytes) {
        acc = (acc << 8) | b;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            *p++ = kB64[(acc >> bits) & 63];
        }
        acc &= (1u << bits) - 1;
    }
    *p++ = kB64[(acc << (6 - bits)) & 63];  // 256 = 42*6 + 4: 4 bits remain
    *p++ = '=';
    s.append(buf, sizeof buf);
}

std::string WgKey::base64() const {
    std::string s;
    append_base64(s);
    return s;
}

std::string WgKey::hex() const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string s;
    s.reserve(64);
    for (uint8_t b : bytes) {
        s.push_back(kHex[b >> 4]);
        s.push_back(kHex[b & 15]);
    }
    return s;
}

bool WgKey::is_zero() const {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

size_t WgKeyHash::operator()(const WgKey& k) const noexcept {
    // Hash all bytes: config keys need not be random, so a prefix alone could collide.
    return std::hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()));
}

std::optional<WgKey> public_key_of(const WgKey& private_key) {
    EVP_PKEY* pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr,
                                                  private_key.bytes.data(), private_key.bytes.size());
    if (!pkey) return std::nullopt;
    WgKey pub;
    size_t len = pub.bytes.size();
    const bool ok = EVP_PKEY_get_raw_public_key(pkey, pub.bytes.data(), &len) == 1 &&
                    len == pub.bytes.size();
    EVP_PKEY_free(pkey);
    if (!ok) return std::nullopt;
    return pub;
}

}  // namespace nb
