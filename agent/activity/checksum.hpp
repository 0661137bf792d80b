// Transport checksums of held packets. A packet copied at tc egress on kernel WireGuard
// may be CHECKSUM_PARTIAL: its checksum field holds only the pseudo-header sum because
// the device would have offloaded the rest. Re-injected through an AF_PACKET socket it
// leaves as CHECKSUM_NONE, so the full checksum must be written before sending.
#pragma once

#include <cstdint>
#include <span>

namespace nb {

// One's-complement sum of `data` (big-endian 16-bit words, odd tail padded with zero)
// added to `sum`, not folded. Chain calls to sum discontiguous pieces of even length.
uint32_t checksum_add(std::span<const uint8_t> data, uint32_t sum = 0);

// RFC 1071 checksum: the complement of the folded sum of `data` plus `initial_sum`,
// as the 16-bit value to store big-endian.
uint16_t internet_checksum(std::span<const uint8_t> data, uint32_t initial_sum = 0);

// Recomputes the full TCP or UDP (IPv4/IPv6) or ICMPv6 checksum over pseudo-header and
// payload. Returns true if it did; false, leaving the bytes untouched, for anything
// else: fragments, ICMPv4 (always fully checksummed), other protocols, IPv6 routing
// headers with segments left, and truncated or inconsistent packets (the receiver drops
// those). Never reads outside `ip_packet`.
bool fix_transport_checksum(std::span<uint8_t> ip_packet);

}  // namespace nb
