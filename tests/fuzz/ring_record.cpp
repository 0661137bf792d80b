// Fuzzes the ring-buffer record decoder (decode_ring_record, agent/activity/ring_record.*)
// with whatever the tc programs could write: a record is rejected or decoded into an
// event that agrees with its header and whose packet lies inside the record (ASan sees
// every byte of it read, as the agent's replay and trace do). A held packet with a GSO
// segment size is cut as the agent cuts it (segment_gso): every segment stays within
// one header plus gso_size, and the payloads add up to the packet's.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "agent/activity/gso_segment.hpp"
#include "agent/activity/ring_record.hpp"
#include "base/net/packet_summary.hpp"
#include "bpf/lazy_peer_kern_user.h"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

constexpr uint32_t kMaxPeers = 64;  // as tests/bpf/lazy_peer_prog_test.cpp's datapath

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    std::span<const uint8_t> record(data, size);
    auto ev = decode_ring_record(record, kMaxPeers);
    if (!ev) return 0;
    nb_event hdr;
    NB_FUZZ_CHECK(size >= sizeof hdr);
    std::memcpy(&hdr, data, sizeof hdr);
    NB_FUZZ_CHECK(ev->peer_id == hdr.peer_id && ev->peer_id < kMaxPeers);
    NB_FUZZ_CHECK(ev->ts_ns == hdr.ts_ns);
    if (ev->kind == RingEvent::Kind::RxWake) {
        NB_FUZZ_CHECK(hdr.type == NB_EV_RX_WAKE && ev->packet.empty());
        return 0;
    }
    NB_FUZZ_CHECK(hdr.type == NB_EV_HELD);
    NB_FUZZ_CHECK(ev->packet.data() == data + sizeof hdr);
    NB_FUZZ_CHECK(ev->packet.size() == hdr.cap_len && ev->packet.size() == size - sizeof hdr);
    NB_FUZZ_CHECK(!ev->packet.empty());
    // The agent keeps a copy for replay and summarizes it for its trace.
    std::vector<uint8_t> copy(ev->packet.begin(), ev->packet.end());
    if (auto s = summarize_packet(ev->packet)) (void)s->str();
    NB_FUZZ_CHECK(ev->gso_size == hdr.gso_size);
    if (ev->gso_size == 0) return 0;
    auto segments = segment_gso(ev->packet, ev->gso_size);
    if (!segments) return 0;
    NB_FUZZ_CHECK(!segments->empty());
    // Headers are the same length in every segment: the packet minus its payload.
    const size_t first = segments->front().size();
    if (segments->size() == 1) {
        NB_FUZZ_CHECK(segments->front() == copy);
        return 0;
    }
    size_t payload = 0, hdr_len = 0;
    for (size_t i = 0; i < segments->size(); ++i) {
        const auto& seg = (*segments)[i];
        if (i + 1 < segments->size()) NB_FUZZ_CHECK(seg.size() == first);
        NB_FUZZ_CHECK(seg.size() <= first);
        NB_FUZZ_CHECK(seg.size() <= copy.size());
        (void)summarize_packet(seg);
    }
    hdr_len = first - ev->gso_size;
    for (const auto& seg : *segments) {
        NB_FUZZ_CHECK(seg.size() > hdr_len);
        payload += seg.size() - hdr_len;
    }
    NB_FUZZ_CHECK(payload + hdr_len == copy.size());
    return 0;
}
