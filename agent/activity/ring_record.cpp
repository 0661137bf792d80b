#include "agent/activity/ring_record.hpp"

#include <cstring>

#include "bpf/lazy_peer_kern_user.h"

namespace nb {

std::optional<RingEvent> decode_ring_record(std::span<const uint8_t> record, uint32_t max_peers) {
    nb_event ev;
    if (record.size() < sizeof(ev)) return std::nullopt;
    // memcpy: a ring-buffer record is only 8-byte aligned, and a caller's copy may be less.
    std::memcpy(&ev, record.data(), sizeof(ev));
    if (ev.peer_id >= max_peers) return std::nullopt;
    RingEvent out;
    out.peer_id = ev.peer_id;
    out.ts_ns = ev.ts_ns;
    switch (ev.type) {
        case NB_EV_HELD:
            if (ev.cap_len != record.size() - sizeof(ev) || ev.cap_len == 0) return std::nullopt;
            out.kind = RingEvent::Kind::Held;
            out.packet = record.subspan(sizeof(ev));
            out.gso_size = ev.gso_size;
            return out;
        case NB_EV_RX_WAKE:
            out.kind = RingEvent::Kind::RxWake;
            return out;
        default:
            return std::nullopt;
    }
}

}  // namespace nb
