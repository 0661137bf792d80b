// WireGuard keys: 32 bytes, base64 in configs and the CLI, hex on the UAPI socket.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nb {

struct WgKey {
    std::array<uint8_t, 32> bytes{};

    static std::optional<WgKey> from_base64(std::string_view b64);
    static std::optional<WgKey> from_hex(std::string_view hex);
    std::string base64() const;
    void append_base64(std::string& out) const;
    std::string hex() const;
    bool is_zero() const;
    auto operator<=>(const WgKey&) const = default;
};

// The public key of a private one (X25519, with OpenSSL's libcrypto); none if it fails.
std::optional<WgKey> public_key_of(const WgKey& private_key);

struct WgKeyHash {
    size_t operator()(const WgKey& k) const noexcept;
};

}  // namespace nb
