// The tc programs run through BPF_PROG_TEST_RUN: every verdict and counter is the
// kernel's, on real maps. The layer-2 length is set to 14 because the test runner
// always expects an Ethernet frame.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "loader/datapath.hpp"
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

// An Ethernet frame around a minimal IPv4/IPv6 UDP packet from src to dst.
std::vector<uint8_t> frame(const IpAddr& src, const IpAddr& dst, size_t payload = 8) {
    std::vector<uint8_t> f(ETH_HLEN, 0);
    bool v4 = src.family == AF_INET;
    uint16_t proto = htons(v4 ? ETH_P_IP : ETH_P_IPV6);
    std::memcpy(&f[12], &proto, 2);
    size_t l4 = 8 + payload;
    if (v4) {
        std::vector<uint8_t> h(20, 0);
        h[0] = 0x45;
        uint16_t tot = htons(static_cast<uint16_t>(20 + l4));
        std::memcpy(&h[2], &tot, 2);
        h[8] = 64;
        h[9] = 17;
        std::memcpy(&h[12], src.bytes.data(), 4);
        std::memcpy(&h[16], dst.bytes.data(), 4);
        f.insert(f.end(), h.begin(), h.end());
    } else {
        std::vector<uint8_t> h(40, 0);
        h[0] = 0x60;
        uint16_t pl = htons(static_cast<uint16_t>(l4));
        std::memcpy(&h[4], &pl, 2);
        h[6] = 17;
        h[7] = 64;
        std::memcpy(&h[8], src.bytes.data(), 16);
        std::memcpy(&h[24], dst.bytes.data(), 16);
        f.insert(f.end(), h.begin(), h.end());
    }
    std::vector<uint8_t> udp(l4, 0xab);
    f.insert(f.end(), udp.begin(), udp.end());
    return f;
}

struct Event {
    nb_event hdr;
    std::vector<uint8_t> data;
};

class LazyPeerProg : public ::testing::Test {
  protected:
    void SetUp() override {
        NB_SKIP_UNLESS(bpf_unusable_reason());
        DatapathOptions o;
        o.max_peers = 64;
        o.max_routes = 256;
        o.ringbuf_bytes = 1 << 20;
        o.max_held = 4;
        o.l2_len = ETH_HLEN;
        dp = std::make_unique<Datapath>(o);
        rb = ring_buffer__new(dp->ringbuf_fd(), &LazyPeerProg::on_event, this, nullptr);
        ASSERT_NE(rb, nullptr);
    }
    void TearDown() override {
        if (rb) ring_buffer__free(rb);
    }

    static int on_event(void* ctx, void* data, size_t size) {
        auto* self = static_cast<LazyPeerProg*>(ctx);
        Event e{};
        std::memcpy(&e.hdr, data, sizeof(nb_event));
        auto* p = static_cast<uint8_t*>(data) + sizeof(nb_event);
        e.data.assign(p, p + (size - sizeof(nb_event)));
        self->events.push_back(std::move(e));
        return 0;
    }

    int run(int prog_fd, const std::vector<uint8_t>& f) {
        LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.data(),
                    .data_size_in = static_cast<uint32_t>(f.size()), .repeat = 1);
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

TEST_F(LazyPeerProg, NonPeerTrafficPasses) {
    add_peer(1, {"10.0.0.2/32"}, NB_SLOT_HOLD);
    EXPECT_EQ(egress("10.0.0.1", "10.9.9.9"), kPass);
    EXPECT_EQ(egress("fd00::1", "fd00::99"), kPass);
    drain();
    EXPECT_TRUE(events.empty());
    EXPECT_EQ(dp->slot(1).held, 0u);
}

TEST_F(LazyPeerProg, IdlePeerPacketIsHeldAndReportedWithItsBytes) {
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
    EXPECT_EQ(dp->slot(3).held, 1u);
    EXPECT_EQ(dp->slot(3).pending, 1u);
}

TEST_F(LazyPeerProg, ConnectedPeerPassesAndCountsActivity) {
    add_peer(2, {"10.0.0.2/32", "fd00::2/128"}, NB_SLOT_PASS);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.2"), kPass);
    EXPECT_EQ(egress("fd00::1", "fd00::2"), kPass);
    EXPECT_EQ(dp->slot(2).tx_packets, 2u);
    EXPECT_NE(dp->slot(2).last_tx_ns, 0u);
    drain();
    EXPECT_TRUE(events.empty());
}

TEST_F(LazyPeerProg, HoldLimitDropsAndCounts) {
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

TEST_F(LazyPeerProg, ConnectedWithUnreplayedPacketsKeepsHoldingForOrder) {
    add_peer(5, {"10.0.0.5/32"}, NB_SLOT_HOLD);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.5"), TC_ACT_REDIRECT);
    dp->set_state(5, NB_SLOT_PASS);  // endpoint set, replay not done yet
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.5"), TC_ACT_REDIRECT);
    EXPECT_EQ(dp->slot(5).pending, 2u);
    dp->release_pending(5, 2);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.5"), kPass);
}

TEST_F(LazyPeerProg, LongestPrefixWinsWhenAllowedIpsOverlap) {
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

TEST_F(LazyPeerProg, PrefixOfConnectedPeerPasses) {
    add_peer(20, {"10.200.0.0/24", "fd20::/64"}, NB_SLOT_PASS);
    EXPECT_EQ(egress("10.0.0.1", "10.200.0.7"), kPass);
    EXPECT_EQ(egress("fd00::1", "fd20::7"), kPass);
    EXPECT_EQ(dp->slot(20).tx_packets, 2u);
}

TEST_F(LazyPeerProg, RemovedRouteNoLongerMatches) {
    add_peer(6, {"10.0.0.6/32", "10.6.0.0/16"}, NB_SLOT_HOLD);
    dp->del_route(pfx("10.0.0.6/32"));
    dp->del_route(pfx("10.6.0.0/16"));
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.6"), kPass);
    EXPECT_EQ(egress("10.0.0.1", "10.6.1.1"), kPass);
}

TEST_F(LazyPeerProg, IngressFromIdlePeerPassesItAndReportsOnce) {
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
    EXPECT_NE(dp->slot(7).rx_wake_ns, 0u);
    EXPECT_EQ(dp->slot(7).rx_packets, 2u);
    EXPECT_EQ(dp->slot(8).rx_packets, 1u);
    EXPECT_NE(dp->slot(8).last_rx_ns, 0u);
    // The held packet keeps newer ones back until the agent has replayed it.
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.7"), kConsumed);
    dp->release_pending(7, 2);
    EXPECT_EQ(egress("10.0.0.1", "10.0.0.7"), kPass);
}

TEST_F(LazyPeerProg, ConfirmHoldsUntilTheFirstReplyThenPasses) {
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
    EXPECT_EQ(dp->slot(10).tx_packets, 1u);
}

TEST_F(LazyPeerProg, NonIpTrafficPasses) {
    add_peer(9, {"10.0.0.9/32"}, NB_SLOT_HOLD);
    std::vector<uint8_t> f(64, 0);
    uint16_t proto = htons(ETH_P_ARP);
    std::memcpy(&f[12], &proto, 2);
    EXPECT_EQ(run(dp->egress_fd(), f), kPass);
}

}  // namespace
}  // namespace nb
