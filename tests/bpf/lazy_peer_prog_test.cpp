// The tc programs run through BPF_PROG_TEST_RUN: every verdict and counter is the
// kernel's, on real maps. The layer-2 length is set to 14 because the test runner
// always expects an Ethernet frame.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "loader/datapath.hpp"
#include "loader/test_run_opts.hpp"
#include "tests/support/frames.hpp"
#include "tests/support/fuzz_seed.hpp"
#include "tests/support/privileged.hpp"

namespace nb {
namespace {

// What the programs return for traffic they let through (see bpf/lazy_peer.bpf.c).
constexpr int kPass = TC_ACT_UNSPEC;
// Held or dropped: a redirect to no device (see bpf/lib/hold.h).
constexpr int kConsumed = TC_ACT_REDIRECT;

std::string bpf_unusable_reason() {
    if (geteuid() != 0) return "needs root for bpf()";
    if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, nullptr) != 1)
        return "kernel cannot load tc programs";
    if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr) != 1)
        return "kernel has no BPF ring buffer";
    return "";
}

IpAddr ip(const char* s) {
    return *IpAddr::parse(s);
}
IpPrefix pfx(const char* s) {
    return *IpPrefix::parse(s);
}

std::vector<uint8_t> frame(const IpAddr& src, const IpAddr& dst, size_t payload = 8) {
    return test::udp_frame(src, dst, payload);
}

struct Event {
    nb_event hdr;
    std::vector<uint8_t> data;
};

class LazyPeerProgBase : public ::testing::Test {
  protected:
    void SetUp() override {
        NB_SKIP_UNLESS(bpf_unusable_reason());
        DatapathOptions o;
        o.max_peers = 64;
        o.max_routes = 256;
        o.ringbuf_bytes = ring_bytes();
        o.max_held = 4;
        o.l2_len = ETH_HLEN;
        tune(o);
        dp = std::make_unique<Datapath>(o);
        rb = ring_buffer__new(dp->ringbuf_fd(), &LazyPeerProgBase::on_event, this, nullptr);
        ASSERT_NE(rb, nullptr);
    }
    void TearDown() override {
        if (rb) ring_buffer__free(rb);
    }
    virtual uint32_t ring_bytes() const { return 1u << 20; }
    virtual void tune(DatapathOptions&) const {}

    static int on_event(void* ctx, void* data, size_t size) {
        auto* self = static_cast<LazyPeerProgBase*>(ctx);
        // The kernel's own records seed the fuzzers of their decoder and of the packet.
        auto* bytes = static_cast<const uint8_t*>(data);
        test::fuzz_seed("ring_record", std::span<const uint8_t>(bytes, size));
        if (size > sizeof(nb_event))
            test::fuzz_seed("packet_summary", std::span<const uint8_t>(bytes + sizeof(nb_event),
                                                                       size - sizeof(nb_event)));
        Event e{};
        std::memcpy(&e.hdr, data, sizeof(nb_event));
        auto* p = static_cast<uint8_t*>(data) + sizeof(nb_event);
        e.data.assign(p, p + (size - sizeof(nb_event)));
        self->events.push_back(std::move(e));
        return 0;
    }

    int run(int prog_fd, const std::vector<uint8_t>& f) {
        auto opts = nb::test_run_opts(f);
        int err = bpf_prog_test_run_opts(prog_fd, &opts);
        EXPECT_EQ(err, 0) << std::strerror(errno);
        return static_cast<int>(opts.retval);
    }
    int egress(const char* src, const char* dst) {
        return run(dp->egress_fd(), frame(ip(src), ip(dst)));
    }
    int ingress(const char* src, const char* dst) {
        return run(dp->ingress_fd(), frame(ip(src), ip(dst)));
    }
    void drain() {
        events.clear();
        ring_buffer__consume(rb);
    }
    void add_peer(uint32_t id, std::initializer_list<const char*> allowed, nb_slot_state st) {
        dp->reset_slot(id, st);
        for (auto* a : allowed) dp->add_route(pfx(a), id);
    }

    std::unique_ptr<Datapath> dp;
    ring_buffer* rb = nullptr;
    std::vector<Event> events;
};

// Every case runs twice: IPv4 host routes in the hash map, and in the dense array
// (10.0.0.0 - 10.1.255.255, so that 10.1.x prefixes overlap it and 10.2.x, 10.6.x and
// 10.200.x lie outside).
class LazyPeerProg : public LazyPeerProgBase, public ::testing::WithParamInterface<bool> {
  protected:
    void tune(DatapathOptions& o) const override {
        if (GetParam()) {
            o.dense4_base = 0x0a000000;
            o.dense4_size = 0x20000;
        }
    }
};

INSTANTIATE_TEST_SUITE_P(Routes, LazyPeerProg, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Dense4" : "Hash"; });

TEST_P(LazyPeerProg, NonPeerTrafficPasses) {
    add_peer(1, {"10.0.0.2/32"}, NB_SLOT_HOLD);
    EXPECT_EQ(egress("10.0.0.1", "10.9.9.9"), kPass);
    EXPECT_EQ(egress("fd00::1", "fd00::99"), kPass);
    drain();
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(dp->slot(1).held, 0u);
}

TEST_P(LazyPeerProg, IdlePeerPacketIsHeldAndReportedWithItsBytes) {
    add_peer(3, {"10.0.0.2/32"}, NB_SLOT_HOLD);
    auto f = frame(ip("10.0.0.1"), ip("10.0.0.2"), 100);
    EXPECT_EQ(run(dp->egress_fd(), f), TC_ACT_REDIRECT);  // consumed, never reaches WireGuard
    drain();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].hdr.type, NB_EV_HELD);
    EXPECT_EQ(events[0].hdr.peer_id, 3u);
    EXPECT_EQ(events[0].hdr.family, NB_AF_INET);
    std::vector<uint8_t> ip_packet(f.begin() + ETH_HLEN, f.end());
    EXPECT_EQ(events[0].data, ip_packet);
    EXPECT_EQ(events[0].hdr.pkt_len, ip_packet.size());
    EXPECT_EQ(events[0].hdr.gso_size, 0u) << "not a GSO packet";
    EXPECT_EQ(dp->slot(3).held, 1u);
    EXPECT_EQ(dp->slot(3).pending, 1u);
}

// A large TCP write reaches the device as one GSO skb; the agent must learn its segment
// size to cut it (the test runner caps frames at a page, so this one is small).
TEST_P(LazyPeerProg, GsoPacketIsHeldWholeWithItsSegmentSize) {
    add_peer(3, {"10.0.0.2/32"}, NB_SLOT_HOLD);
    auto f = frame(ip("10.0.0.1"), ip("10.0.0.2"), 3000);
    __sk_buff ctx{};
    ctx.gso_size = 1368;
    ctx.gso_segs = 3;
    auto opts = nb::test_run_opts(f);
    opts.ctx_in = &ctx;
    opts.ctx_size_in = sizeof(ctx);
    ASSERT_EQ(bpf_prog_test_run_opts(dp->egress_fd(), &opts), 0) << std::strerror(errno);
    EXPECT_EQ(opts.retval, static_cast<uint32_t>(TC_ACT_REDIRECT));
    drain();
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].hdr.gso_size, 1368u);
    EXPECT_EQ(events[0].data, std::vector<uint8_t>(f.begin() + ETH_HLEN, f.end()));
    EXPECT_EQ(dp->slot(3).held, 1u);
    EXPECT_EQ(dp->slot(3).dropped, 0u);
}

TEST_P(LazyPeerProg, ConnectedPeerPassesAndCountsActivity) {
    add_peer(2, {"10.0.0.2/32", "fd00::2/128"}, NB_SLOT_PASS);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.2"), kPass);
    EXPECT_EQ(egress("fd00::1", "fd00::2"), kPass);
    EXPECT_NE(dp->slot(2).last_tx_jiffies, 0u);
    EXPECT_EQ(dp->slot(2).last_rx_jiffies, 0u);
    // A host route outside the dense range (hash map) works alongside.
    dp->add_route(pfx("172.16.0.2/32"), 2);
    EXPECT_EQ(egress("10.0.0.1", "172.16.0.2"), kPass);
    drain();
    EXPECT_TRUE(events.empty());
}

TEST_P(LazyPeerProg, HoldLimitDropsAndCounts) {
    add_peer(4, {"10.0.0.4/32"}, NB_SLOT_HOLD);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(egress("10.0.0.1", "10.0.0.4"), TC_ACT_REDIRECT);
    drain();
    EXPECT_EQ(events.size(), 4u);  // max_held = 4
    EXPECT_EQ(dp->slot(4).held, 4u);
    EXPECT_EQ(dp->slot(4).dropped, 2u);
    // Releasing what the agent discarded makes room again.
    dp->release_pending(4, 4);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.4"), TC_ACT_REDIRECT);
    EXPECT_EQ(dp->slot(4).held, 5u);
}

// A peer the agent would drop packets for anyway (backing off, waiting for admission) is
// muted: its packets are dropped and counted without a report, until the mute ends.
TEST_P(LazyPeerProg, MutedPeerIsDroppedWithoutAReport) {
    add_peer(6, {"10.0.0.6/32"}, NB_SLOT_HOLD);
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    const uint64_t now = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
    dp->mute(6, now + 60'000'000'000ull);
    EXPECT_NE(dp->slot(6).mute_until, 0u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(egress("10.0.0.1", "10.0.0.6"), TC_ACT_REDIRECT);
    drain();
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(dp->slot(6).dropped, 3u);
    EXPECT_EQ(dp->slot(6).held, 0u);
    EXPECT_EQ(dp->slot(6).pending, 0u);
    // Only HOLD is muted: a waking peer's packets are held and reported.
    dp->set_state(6, NB_SLOT_PASS_CONFIRM);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.6"), TC_ACT_REDIRECT);
    drain();
    EXPECT_EQ(events.size(), 1u);
    dp->release_pending(6, 1);
    // A mute that has ended (or is cleared) reports again.
    dp->set_state(6, NB_SLOT_HOLD);
    dp->mute(6, now - 1'000'000'000ull);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.6"), TC_ACT_REDIRECT);
    dp->mute(6, 0);
    EXPECT_EQ(dp->slot(6).mute_until, 0u);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.6"), TC_ACT_REDIRECT);
    drain();
    EXPECT_EQ(events.size(), 2u);
    EXPECT_EQ(dp->slot(6).dropped, 3u);
}

TEST_P(LazyPeerProg, ConnectedWithUnreplayedPacketsKeepsHoldingForOrder) {
    add_peer(5, {"10.0.0.5/32"}, NB_SLOT_HOLD);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.5"), TC_ACT_REDIRECT);
    dp->set_state(5, NB_SLOT_PASS);  // endpoint set, replay not done yet
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.5"), TC_ACT_REDIRECT);
    EXPECT_EQ(dp->slot(5).pending, 2u);
    dp->release_pending(5, 2);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.5"), kPass);
}

TEST_P(LazyPeerProg, LongestPrefixWinsWhenAllowedIpsOverlap) {
    add_peer(10, {"10.1.0.0/16", "fd10::/32"}, NB_SLOT_HOLD);
    add_peer(11, {"10.1.2.0/24", "fd10:0:2::/48"}, NB_SLOT_HOLD);
    add_peer(12, {"10.1.2.3/32", "fd10:0:2::3/128"}, NB_SLOT_HOLD);
    const std::pair<const char*, uint32_t> cases[] = {{"10.1.2.3", 12},    {"10.1.2.4", 11},
                                                      {"10.1.9.9", 10},    {"fd10:0:2::3", 12},
                                                      {"fd10:0:2::4", 11}, {"fd10:0:9::1", 10}};
    for (auto [dst, want] : cases) {
        drain();
        EXPECT_EQ(egress(std::strchr(dst, ':') ? "fd00::1" : "10.0.0.1", dst), TC_ACT_REDIRECT)
            << dst;
        drain();
        ASSERT_EQ(events.size(), 1u) << dst;
        EXPECT_EQ(events[0].hdr.peer_id, want) << dst;
    }
    EXPECT_EQ(egress("10.0.0.1", "10.2.0.1"), kPass);  // outside every prefix
}

TEST_P(LazyPeerProg, PrefixOfConnectedPeerPasses) {
    add_peer(20, {"10.200.0.0/24", "fd20::/64"}, NB_SLOT_PASS);
    EXPECT_EQ(egress("10.0.0.1", "10.200.0.7"), kPass);
    EXPECT_EQ(egress("fd00::1", "fd20::7"), kPass);
    EXPECT_NE(dp->slot(20).last_tx_jiffies, 0u);
}

TEST_P(LazyPeerProg, RemovedRouteNoLongerMatches) {
    add_peer(6, {"10.0.0.6/32", "10.6.0.0/16"}, NB_SLOT_HOLD);
    dp->del_route(pfx("10.0.0.6/32"));
    dp->del_route(pfx("10.6.0.0/16"));
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.6"), kPass);
    EXPECT_EQ(egress("10.0.0.1", "10.6.1.1"), kPass);
}

TEST_P(LazyPeerProg, IngressFromIdlePeerPassesItAndReportsOnce) {
    add_peer(7, {"10.0.0.7/32"}, NB_SLOT_HOLD);
    add_peer(8, {"fd00::8/128"}, NB_SLOT_PASS);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.7"), kConsumed);  // held while idle
    EXPECT_EQ(ingress("10.0.0.7", "10.0.0.1"), kPass);
    // The remote is talking: the program passes it at once, without the agent...
    EXPECT_EQ(dp->slot(7).state, static_cast<uint32_t>(NB_SLOT_PASS));
    EXPECT_EQ(ingress("10.0.0.7", "10.0.0.1"), kPass);  // ...and reports only the first
    EXPECT_EQ(ingress("fd00::8", "fd00::1"), kPass);
    EXPECT_EQ(ingress("10.9.9.9", "10.0.0.1"), kPass);
    drain();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].hdr.type, NB_EV_HELD);
    EXPECT_EQ(events[1].hdr.type, NB_EV_RX_WAKE);
    EXPECT_EQ(events[1].hdr.peer_id, 7u);
    EXPECT_EQ(dp->slot(7).missed, 0u);  // nothing was lost
    EXPECT_NE(dp->slot(7).last_rx_jiffies, 0u);
    EXPECT_NE(dp->slot(8).last_rx_jiffies, 0u);
    EXPECT_EQ(dp->slot(8).last_tx_jiffies, 0u);
    // The held packet keeps newer ones back until the agent has replayed it.
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.7"), kConsumed);
    dp->release_pending(7, 2);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.7"), kPass);
}

TEST_P(LazyPeerProg, ConfirmHoldsUntilTheFirstReplyThenPasses) {
    add_peer(10, {"10.0.0.10/32"}, NB_SLOT_PASS_CONFIRM);
    // Handshake unproven: held, so nothing overtakes WireGuard's handshake queue.
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.10"), kConsumed);
    EXPECT_EQ(ingress("10.0.0.10", "10.0.0.1"), kPass);
    EXPECT_EQ(ingress("10.0.0.10", "10.0.0.1"), kPass);
    EXPECT_EQ(dp->slot(10).state, static_cast<uint32_t>(NB_SLOT_PASS));
    drain();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].hdr.type, NB_EV_HELD);
    EXPECT_EQ(events[1].hdr.type, NB_EV_RX_WAKE);  // once, for two replies
    EXPECT_EQ(events[1].hdr.peer_id, 10u);
    // Still behind the held packet until the agent has replayed it.
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.10"), kConsumed);
    dp->release_pending(10, 2);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.10"), kPass);
    EXPECT_NE(dp->slot(10).last_tx_jiffies, 0u);
}

TEST_P(LazyPeerProg, NonIpTrafficPasses) {
    add_peer(9, {"10.0.0.9/32"}, NB_SLOT_HOLD);
    std::vector<uint8_t> f(64, 0);
    uint16_t proto = htons(ETH_P_ARP);
    std::memcpy(&f[12], &proto, 2);
    EXPECT_EQ(run(dp->egress_fd(), f), kPass);
}

uint64_t mono_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

TEST_P(LazyPeerProg, ActivityStampsConvertToMonotonicTime) {
    // The kernel's tick length for HZ 100, 250, 300 or 1000.
    const uint64_t tick = dp->ns_per_jiffy();
    EXPECT_TRUE(tick == 10000000 || tick == 4000000 || tick == 3333333 || tick == 1000000) << tick;
    add_peer(3, {"10.0.0.3/32"}, NB_SLOT_PASS);
    const uint64_t before = mono_ns();
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.3"), kPass);
    const uint64_t after = mono_ns();
    const uint64_t at = dp->jiffies_to_ns(dp->slot(3).last_tx_jiffies);
    // A stamp is the start of the jiffy the packet passed in.
    EXPECT_GE(at + 2 * tick, before);
    EXPECT_LE(at, after + tick);
    EXPECT_EQ(dp->jiffies_to_ns(0), 0u);  // never stays never
}

// A ring buffer of one page, so that it overflows while nobody reads it.
class LazyPeerProgSmallRing : public LazyPeerProgBase {
  protected:
    uint32_t ring_bytes() const override { return 4096; }
};

TEST_F(LazyPeerProgSmallRing, OverflowMarksThePeersWhoseReportWasLost) {
    constexpr uint32_t kPeers = 40;
    for (uint32_t id = 0; id < kPeers; ++id) {
        std::string a = "10.0.1." + std::to_string(id + 1) + "/32";
        add_peer(id, {a.c_str()}, NB_SLOT_HOLD);
    }
    // Four packets each (max_held), peer after peer: more than a page of records, so the
    // last peers lose even their first.
    for (uint32_t id = 0; id < kPeers; ++id)
        for (int n = 0; n < 4; ++n) {
            std::string d = "10.0.1." + std::to_string(id + 1);
            EXPECT_EQ(egress("10.0.0.1", d.c_str()), kConsumed);
        }
    const uint64_t lost = dp->ring_full_count();
    ASSERT_GT(lost, 0u) << "a page of ring should not hold 160 records";
    uint64_t marked = 0, dropped = 0, reported_first = 0;
    for (uint32_t id = 0; id < kPeers; ++id) {
        const nb_peer_slot& sl = dp->slot(id);
        dropped += sl.dropped;
        EXPECT_EQ(sl.pending, sl.held) << "peer " << id;  // a refused record is not pending
        if (sl.missed) ++marked;
        // A peer whose every report fit is not marked.
        if (sl.dropped == 0)
            EXPECT_EQ(sl.missed, 0u) << "peer " << id;
        else
            EXPECT_EQ(sl.missed, 1u) << "peer " << id;
        if (sl.held > 0) ++reported_first;
    }
    EXPECT_EQ(dropped, lost);
    EXPECT_GT(marked, 0u);
    EXPECT_LT(reported_first, kPeers) << "some peers' first packet must have been lost";
    // Taking a mark clears it, once.
    uint32_t some = 0;
    while (some < kPeers && !dp->slot(some).missed) ++some;
    ASSERT_LT(some, kPeers);
    EXPECT_TRUE(dp->take_missed(some));
    EXPECT_FALSE(dp->take_missed(some));
    EXPECT_EQ(dp->slot(some).missed, 0u);

    // First replies of idle peers are lost too once the ring is full (the small wake
    // records fill what room is left first): the program still passes each peer, and
    // marks those whose report was lost so the agent catches up.
    uint64_t wake_marked = 0;
    for (uint32_t id = 50; id < 60; ++id) {
        std::string a = "10.0.2." + std::to_string(id);
        add_peer(id, {(a + "/32").c_str()}, NB_SLOT_HOLD);
        EXPECT_EQ(ingress(a.c_str(), "10.0.0.1"), kPass);
        EXPECT_EQ(dp->slot(id).state, static_cast<uint32_t>(NB_SLOT_PASS));
        wake_marked += dp->slot(id).missed;
    }
    EXPECT_GT(wake_marked, 0u);
    EXPECT_EQ(dp->ring_full_count(), lost + wake_marked);

    // Once read, the ring takes reports again.
    drain();
    EXPECT_FALSE(events.empty());
    add_peer(51, {"10.0.2.2/32"}, NB_SLOT_HOLD);
    EXPECT_EQ(egress("10.0.0.1", "10.0.2.2"), kConsumed);
    EXPECT_EQ(dp->slot(51).held, 1u);
    EXPECT_EQ(dp->slot(51).missed, 0u);
}

}  // namespace
}  // namespace nb
