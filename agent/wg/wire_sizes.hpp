// WireGuard's message sizes on the wire, without UDP and IP (the WireGuard paper, 5.4):
// what its byte counters grow by, which the lazy manager reads as proof and activity.
#pragma once

#include <cstdint>

namespace nb {

inline constexpr uint64_t kWgInitiationBytes = 148;
inline constexpr uint64_t kWgResponseBytes = 92;  // the smallest handshake message
// A data message: header (16) and tag (16) around the padded packet. A keepalive is one
// with no packet.
inline constexpr uint64_t kWgDataOverheadBytes = 32;
inline constexpr uint64_t kWgKeepaliveBytes = kWgDataOverheadBytes;

}  // namespace nb
