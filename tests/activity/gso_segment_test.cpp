#include "agent/activity/gso_segment.hpp"

#include <gtest/gtest.h>

#include "agent/activity/checksum.hpp"
#include "tests/activity/packets.hpp"

namespace nb {
namespace {

using test::Bytes;
using test::get16;

std::string pattern(size_t n) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
}

uint32_t get32(const Bytes& b, size_t off) {
    return static_cast<uint32_t>(get16(b, off)) << 16 | get16(b, off + 2);
}

TEST(GsoSegment, TcpIpv4IsCutAsTsoCutsIt) {
    const std::string data = pattern(4000);
    Bytes seg = test::segment(IPPROTO_TCP, data);
    seg[13] = 0x80 | 0x18 | 0x01;  // CWR, PSH, ACK, FIN
    const Bytes packet = test::ipv4_packet(IPPROTO_TCP, seg);
    auto out = segment_gso(packet, 1368);
    ASSERT_TRUE(out);
    ASSERT_EQ(out->size(), 3u);
    std::string joined;
    for (size_t i = 0; i < out->size(); ++i) {
        Bytes& s = (*out)[i];
        const size_t len = i < 2 ? 1368 : 4000 - 2 * 1368;
        ASSERT_EQ(s.size(), 40 + len) << i;
        EXPECT_EQ(get16(s, 2), 40 + len) << "IPv4 total length of " << i;
        EXPECT_EQ(get16(s, 4), 0xbeef + i) << "IPv4 id of " << i;
        EXPECT_EQ(test::reference_checksum(Bytes(s.begin(), s.begin() + 20)), 0)
            << "header checksum of " << i;
        EXPECT_EQ(get32(s, 24), 0x12340000u + i * 1368) << "sequence of " << i;
        const uint8_t flags = s[33];
        EXPECT_EQ((flags & 0x80) != 0, i == 0) << "CWR on the first only";
        EXPECT_EQ((flags & 0x09) != 0, i == 2) << "FIN and PSH on the last only";
        EXPECT_TRUE(flags & 0x10) << "ACK on all";
        // The injector completes the checksum; the reference then agrees.
        ASSERT_TRUE(fix_transport_checksum(s));
        Bytes tcp(s.begin() + 20, s.end());
        const uint16_t written = get16(tcp, 16);
        test::checksum_segment(tcp, IPPROTO_TCP, test::ipv4_src(), test::ipv4_dst());
        EXPECT_EQ(written, get16(tcp, 16)) << i;
        joined.append(s.begin() + 40, s.end());
    }
    EXPECT_EQ(joined, data);
}

TEST(GsoSegment, UdpIpv6GetsALengthPerSegment) {
    const std::string data = pattern(3000);
    const Bytes packet = test::ipv6_packet(IPPROTO_UDP, {}, test::segment(IPPROTO_UDP, data));
    auto out = segment_gso(packet, 1200);
    ASSERT_TRUE(out);
    ASSERT_EQ(out->size(), 3u);
    std::string joined;
    for (size_t i = 0; i < out->size(); ++i) {
        const Bytes& s = (*out)[i];
        const size_t len = i < 2 ? 1200 : 600;
        ASSERT_EQ(s.size(), 48 + len);
        EXPECT_EQ(get16(s, 4), 8 + len) << "IPv6 payload length of " << i;
        EXPECT_EQ(get16(s, 44), 8 + len) << "UDP length of " << i;
        joined.append(s.begin() + 48, s.end());
    }
    EXPECT_EQ(joined, data);
}

TEST(GsoSegment, APacketThatFitsComesBackWhole) {
    const Bytes packet = test::ipv4_packet(IPPROTO_TCP, test::segment(IPPROTO_TCP, pattern(1368)));
    auto out = segment_gso(packet, 1368);
    ASSERT_TRUE(out);
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ(out->front(), packet);
}

TEST(GsoSegment, WhatCannotBeCutIsRefused) {
    const Bytes tcp = test::segment(IPPROTO_TCP, pattern(3000));
    EXPECT_FALSE(segment_gso(test::ipv4_packet(IPPROTO_TCP, tcp), 0)) << "gso_size 0";
    EXPECT_FALSE(segment_gso(test::ipv4_packet(IPPROTO_TCP, tcp, 0x2000), 1000)) << "a fragment";
    EXPECT_FALSE(segment_gso(test::ipv4_packet(IPPROTO_ICMP, tcp), 1000)) << "not TCP or UDP";
    const Bytes hop_by_hop = {IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0};
    EXPECT_FALSE(segment_gso(test::ipv6_packet(0, hop_by_hop, tcp), 1000)) << "an extension header";
    Bytes wrong_length = test::ipv4_packet(IPPROTO_TCP, tcp);
    test::put16(wrong_length, 2, 100);
    EXPECT_FALSE(segment_gso(wrong_length, 1000)) << "IPv4 length disagrees with the bytes";
    Bytes truncated = test::ipv4_packet(IPPROTO_TCP, tcp);
    truncated.resize(30);
    test::put16(truncated, 2, 30);
    EXPECT_FALSE(segment_gso(truncated, 1000)) << "TCP header cut short";
    EXPECT_FALSE(segment_gso(Bytes{}, 1000));
    // 3000 bytes in 1-byte segments: not a size the kernel uses, and 3000 copies.
    EXPECT_FALSE(segment_gso(test::ipv4_packet(IPPROTO_TCP, tcp), 1)) << "too many segments";
    EXPECT_TRUE(segment_gso(test::ipv4_packet(IPPROTO_TCP, tcp), 2)) << "1,490 segments";
}

}  // namespace
}  // namespace nb
