// Splitting a held GSO super-packet into the packets the device would have sent. On
// kernel WireGuard, TCP (and UDP with UDP_SEGMENT) hands the device one skb of up to
// 64 KiB with gso_size set, and the device segments it. A held copy re-sent through the
// AF_PACKET socket must be cut first: the socket refuses anything above the MTU.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace nb {

// The kernel cuts 64 KiB with TCP's smallest MSS (48) into under 1,400 segments; a
// segment size that asks for more is not the kernel's, and is refused rather than
// turned into tens of thousands of copies.
inline constexpr size_t kMaxGsoSegments = 2048;

// The segments of `packet` (IPv4, or IPv6 without extension headers, carrying TCP or
// UDP) with at most `gso_size` payload bytes each, cut as the kernel's TSO/USO cuts
// them: TCP sequence numbers advance, FIN and PSH only on the last segment, CWR only on
// the first; IPv4 ids count up from the first; lengths and the IPv4 header checksum are
// rewritten. Transport checksums are left to the injector (fix_transport_checksum).
// A packet whose payload already fits comes back whole, as one segment. nullopt for
// what cannot be segmented: other protocols, fragments, extension headers, lengths that
// disagree with the bytes, gso_size 0, more than kMaxGsoSegments segments.
std::optional<std::vector<std::vector<uint8_t>>> segment_gso(std::span<const uint8_t> packet,
                                                             uint32_t gso_size);

}  // namespace nb
