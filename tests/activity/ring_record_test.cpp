// Ring-buffer records as the tc programs write them (struct nb_event and the packet),
// well formed and not: a record that disagrees with its own header is never read past.
#include "agent/activity/ring_record.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "bpf/lazy_peer_kern_user.h"
#include "tests/activity/packets.hpp"
#include "tests/support/fuzz_seed.hpp"

namespace nb {
namespace {

using test::Bytes;

constexpr uint32_t kMaxPeers = 64;

Bytes record(uint16_t type, uint32_t peer_id, const Bytes& packet, uint32_t cap_len) {
    nb_event ev{};
    ev.type = type;
    ev.family = NB_AF_INET;
    ev.peer_id = peer_id;
    ev.ts_ns = 123456789;
    ev.pkt_len = static_cast<uint32_t>(packet.size());
    ev.cap_len = cap_len;
    Bytes r(sizeof ev);
    std::memcpy(r.data(), &ev, sizeof ev);
    r.insert(r.end(), packet.begin(), packet.end());
    return r;
}

Bytes held(uint32_t peer_id, const Bytes& packet) {
    return record(NB_EV_HELD, peer_id, packet, static_cast<uint32_t>(packet.size()));
}

std::optional<RingEvent> decode(const Bytes& r) {
    test::fuzz_seed("ring_record", r);
    return decode_ring_record(r, kMaxPeers);
}

TEST(RingRecord, HeldPacketPointsIntoTheRecord) {
    Bytes packet = test::ipv4_packet(IPPROTO_UDP, test::segment(IPPROTO_UDP, "x"));
    Bytes r = held(7, packet);
    auto ev = decode(r);
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->kind, RingEvent::Kind::Held);
    EXPECT_EQ(ev->peer_id, 7u);
    EXPECT_EQ(ev->ts_ns, 123456789u);
    ASSERT_EQ(ev->packet.size(), packet.size());
    EXPECT_EQ(ev->packet.data(), r.data() + sizeof(nb_event));
    EXPECT_TRUE(std::equal(packet.begin(), packet.end(), ev->packet.begin()));
}

TEST(RingRecord, RxWakeHasNoPacket) {
    auto ev = decode(record(NB_EV_RX_WAKE, kMaxPeers - 1, {}, 0));
    ASSERT_TRUE(ev);
    EXPECT_EQ(ev->kind, RingEvent::Kind::RxWake);
    EXPECT_EQ(ev->peer_id, kMaxPeers - 1);
    EXPECT_TRUE(ev->packet.empty());
}

TEST(RingRecord, MalformedRecordsAreRejected) {
    Bytes packet = test::ipv6_packet(IPPROTO_TCP, {}, test::segment(IPPROTO_TCP, "", 22, 2222));
    Bytes good = held(1, packet);
    for (size_t len = 0; len < sizeof(nb_event); ++len)
        EXPECT_FALSE(decode(Bytes(good.begin(), good.begin() + static_cast<long>(len)))) << len;
    EXPECT_FALSE(decode(held(kMaxPeers, packet)));  // peer id out of range
    EXPECT_FALSE(decode(held(0xffffffff, packet)));
    EXPECT_FALSE(decode(record(3, 1, packet, static_cast<uint32_t>(packet.size()))));  // type
    EXPECT_FALSE(decode(record(0, 1, {}, 0)));
    EXPECT_FALSE(decode(record(NB_EV_HELD, 1, {}, 0)));  // held, no bytes
    EXPECT_FALSE(decode(record(NB_EV_HELD, 1, packet, 0)));
    // cap_len must match the bytes that follow exactly, either way.
    EXPECT_FALSE(decode(record(NB_EV_HELD, 1, packet, static_cast<uint32_t>(packet.size() + 1))));
    EXPECT_FALSE(decode(record(NB_EV_HELD, 1, packet, static_cast<uint32_t>(packet.size() - 1))));
    EXPECT_FALSE(decode(record(NB_EV_HELD, 1, packet, 0xffffffff)));
}

}  // namespace
}  // namespace nb
