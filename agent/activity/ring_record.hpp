// Records of the tc programs' ring buffer (struct nb_event in bpf/lazy_peer_kern_user.h),
// decoded without the ring: the kernel side is trusted less than it could be, so every
// record is checked against its own header before anything reads it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace nb {

struct RingEvent {
    enum class Kind { Held, RxWake };
    Kind kind = Kind::RxWake;
    uint32_t peer_id = 0;
    uint64_t ts_ns = 0;
    std::span<const uint8_t> packet;  // Held: the captured bytes, inside the record
    uint32_t gso_size = 0;  // Held: a GSO super-packet's payload bytes per segment, 0 if none
};

// nullopt for a record that does not match its header: shorter than the header, a peer
// id at or beyond `max_peers`, an unknown type, or a held packet whose length is 0 or
// differs from the bytes that follow the header.
std::optional<RingEvent> decode_ring_record(std::span<const uint8_t> record, uint32_t max_peers);

}  // namespace nb
