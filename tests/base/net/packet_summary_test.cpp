#include "base/net/packet_summary.hpp"

#include <gtest/gtest.h>

#include "tests/activity/packets.hpp"
#include "tests/support/fuzz_seed.hpp"

namespace nb {
namespace {

using namespace nb::test;

std::optional<PacketSummary> summarize(std::span<const uint8_t> packet) {
    fuzz_seed("packet_summary", packet);
    return summarize_packet(packet);
}

TEST(SummarizePacket, Ipv4Udp) {
    auto s = summarize(ipv4_packet(IPPROTO_UDP, segment(IPPROTO_UDP, "x", 5353, 53)));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->family, AF_INET);
    EXPECT_EQ(s->src, *IpAddr::parse("10.1.2.3"));
    EXPECT_EQ(s->dst, *IpAddr::parse("10.200.0.9"));
    EXPECT_EQ(s->proto, IPPROTO_UDP);
    EXPECT_EQ(s->sport, 5353);
    EXPECT_EQ(s->dport, 53);
    EXPECT_EQ(s->str(), "udp 10.1.2.3:5353 -> 10.200.0.9:53");
}

TEST(SummarizePacket, Ipv4TcpAndIcmp) {
    auto t = summarize(ipv4_packet(IPPROTO_TCP, segment(IPPROTO_TCP, "", 443, 51000)));
    ASSERT_TRUE(t);
    EXPECT_EQ(t->proto, IPPROTO_TCP);
    EXPECT_EQ(t->sport, 443);
    EXPECT_EQ(t->dport, 51000);
    auto i = summarize(ipv4_packet(IPPROTO_ICMP, {8, 0, 0, 0, 1, 2, 3, 4}));
    ASSERT_TRUE(i);
    EXPECT_EQ(i->proto, IPPROTO_ICMP);
    EXPECT_EQ(i->sport, 0);
    EXPECT_EQ(i->dport, 0);
    EXPECT_EQ(i->str(), "icmp 10.1.2.3 -> 10.200.0.9");
}

TEST(SummarizePacket, Ipv4NonFirstFragmentHasNoPorts) {
    auto s = summarize(ipv4_packet(IPPROTO_UDP, segment(IPPROTO_UDP, "x"), 0x0020));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->proto, IPPROTO_UDP);
    EXPECT_EQ(s->sport, 0);
    auto first = summarize(ipv4_packet(IPPROTO_UDP, segment(IPPROTO_UDP, "x"), 0x2000));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->sport, 40000);
}

TEST(SummarizePacket, Ipv6PlainAndHopByHop) {
    auto s = summarize(ipv6_packet(IPPROTO_TCP, {}, segment(IPPROTO_TCP, "", 22, 2222)));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->family, AF_INET6);
    EXPECT_EQ(s->src, *IpAddr::parse("fd00::1"));
    EXPECT_EQ(s->dst, *IpAddr::parse("fd00::1234:2"));
    EXPECT_EQ(s->str(), "tcp [fd00::1]:22 -> [fd00::1234:2]:2222");
    auto h = summarize(ipv6_packet(IPPROTO_HOPOPTS, {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0},
                                   segment(IPPROTO_UDP, "", 1, 2)));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->proto, IPPROTO_UDP);
    EXPECT_EQ(h->sport, 1);
    EXPECT_EQ(h->dport, 2);
    auto icmp = summarize(ipv6_packet(IPPROTO_ICMPV6, {}, segment(IPPROTO_ICMPV6, "")));
    ASSERT_TRUE(icmp);
    EXPECT_EQ(icmp->str(), "icmpv6 fd00::1 -> fd00::1234:2");
}

TEST(SummarizePacket, Ipv6Fragments) {
    Bytes seg = segment(IPPROTO_UDP, "x", 7, 8);
    auto first = summarize(ipv6_packet(IPPROTO_FRAGMENT, {IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 1}, seg));
    ASSERT_TRUE(first);
    EXPECT_EQ(first->proto, IPPROTO_UDP);
    EXPECT_EQ(first->sport, 7);
    auto later = summarize(ipv6_packet(IPPROTO_FRAGMENT, {IPPROTO_UDP, 0, 0, 8, 0, 0, 0, 1}, seg));
    ASSERT_TRUE(later);
    EXPECT_EQ(later->proto, IPPROTO_UDP);
    EXPECT_EQ(later->sport, 0);
}

TEST(SummarizePacket, MalformedAndTruncated) {
    EXPECT_FALSE(summarize({}));
    EXPECT_FALSE(summarize(Bytes{0x50, 0, 0, 0}));  // not IP
    Bytes v4 = ipv4_packet(IPPROTO_UDP, segment(IPPROTO_UDP, "x"));
    for (size_t len = 0; len < 20; ++len) {
        EXPECT_FALSE(summarize(Bytes(v4.begin(), v4.begin() + static_cast<long>(len))));
    }
    // Header present, ports cut off: summarized without ports.
    auto noports = summarize(Bytes(v4.begin(), v4.begin() + 22));
    ASSERT_TRUE(noports);
    EXPECT_EQ(noports->proto, IPPROTO_UDP);
    EXPECT_EQ(noports->sport, 0);
    Bytes bad_ihl = v4;
    bad_ihl[0] = 0x44;  // IHL 16 < 20
    EXPECT_FALSE(summarize(bad_ihl));
    Bytes v6 = ipv6_packet(IPPROTO_HOPOPTS, {IPPROTO_UDP, 200, 1, 4, 0, 0, 0, 0},
                           segment(IPPROTO_UDP, "x"));
    for (size_t len = 0; len < v6.size(); ++len) {
        auto s = summarize(Bytes(v6.begin(), v6.begin() + static_cast<long>(len)));
        EXPECT_EQ(s.has_value(), len >= 40) << len;
        if (s) {
            EXPECT_EQ(s->sport, 0) << len;  // the hop-by-hop header claims 1608 bytes
        }
    }
}

}  // namespace
}  // namespace nb
