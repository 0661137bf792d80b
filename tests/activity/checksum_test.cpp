#include "agent/activity/checksum.hpp"

#include <random>

#include <gtest/gtest.h>

#include "tests/activity/packets.hpp"

namespace nb {
namespace {

using namespace nb::test;

struct Variant {
    const char* name;
    Bytes packet;  // with a correct checksum
    size_t check_at;
    uint16_t partial;  // the field as a CHECKSUM_PARTIAL skb has it
};

// CHECKSUM_PARTIAL leaves the folded pseudo-header sum, not complemented, in the field.
uint16_t partial_value(const Bytes& src, const Bytes& dst, uint8_t proto, size_t seg_len) {
    Bytes flat = src;
    flat.insert(flat.end(), dst.begin(), dst.end());
    flat.insert(flat.end(), {0, 0, static_cast<uint8_t>(seg_len >> 8),
                             static_cast<uint8_t>(seg_len), 0, 0, 0, proto});
    return static_cast<uint16_t>(~reference_checksum(flat));
}

Variant v4(uint8_t proto, const std::string& payload) {
    Bytes seg = segment(proto, payload);
    checksum_segment(seg, proto, ipv4_src(), ipv4_dst());
    return {"ipv4", ipv4_packet(proto, seg), 20 + checksum_offset(proto),
            partial_value(ipv4_src(), ipv4_dst(), proto, seg.size())};
}

Variant v6(uint8_t proto, const std::string& payload, Bytes ext = {}, uint8_t first = 0) {
    Bytes seg = segment(proto, payload);
    checksum_segment(seg, proto, ipv6_src(), ipv6_dst());
    if (ext.empty()) first = proto;
    size_t ext_len = ext.size();
    return {"ipv6", ipv6_packet(first, ext, seg), 40 + ext_len + checksum_offset(proto),
            partial_value(ipv6_src(), ipv6_dst(), proto, seg.size())};
}

void expect_fixes(const Variant& v) {
    SCOPED_TRACE(v.name);
    for (uint16_t broken : {uint16_t{0}, v.partial, uint16_t{0xdead}}) {
        Bytes p = v.packet;
        put16(p, v.check_at, broken);
        EXPECT_TRUE(fix_transport_checksum(p));
        EXPECT_EQ(p, v.packet) << "field was " << broken;
    }
    // Already correct stays correct.
    Bytes p = v.packet;
    EXPECT_TRUE(fix_transport_checksum(p));
    EXPECT_EQ(p, v.packet);
}

void expect_untouched(Bytes p) {
    const Bytes before = p;
    EXPECT_FALSE(fix_transport_checksum(p));
    EXPECT_EQ(p, before);
}

TEST(InternetChecksum, KnownIpv4HeaderVector) {
    // The classic example header (checksum field zeroed); its checksum is 0xb861.
    Bytes h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
               0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    EXPECT_EQ(internet_checksum(h), 0xb861);
    put16(h, 10, 0xb861);
    EXPECT_EQ(internet_checksum(h), 0);
}

TEST(InternetChecksum, MatchesReferenceOnRandomData) {
    std::mt19937 rng(12345);
    for (size_t len = 0; len < 300; ++len) {
        Bytes d(len);
        for (auto& b : d) b = static_cast<uint8_t>(rng());
        EXPECT_EQ(internet_checksum(d), reference_checksum(d)) << "len " << len;
        // Chained sums of an even-length head and the tail give the same result.
        size_t half = (len / 2) & ~size_t{1};
        uint32_t head = checksum_add(std::span<const uint8_t>(d).first(half));
        EXPECT_EQ(internet_checksum(std::span<const uint8_t>(d).subspan(half), head),
                  reference_checksum(d))
            << "len " << len;
    }
    Bytes ones(70000, 0xff);  // large sums carry many times
    EXPECT_EQ(internet_checksum(ones), reference_checksum(ones));
}

TEST(FixTransportChecksum, Ipv4UdpAndTcp) {
    expect_fixes(v4(IPPROTO_UDP, "hello, wireguard"));
    expect_fixes(v4(IPPROTO_UDP, "odd"));
    expect_fixes(v4(IPPROTO_UDP, ""));
    expect_fixes(v4(IPPROTO_TCP, "GET / HTTP/1.1\r\n\r\n"));
    expect_fixes(v4(IPPROTO_TCP, "x"));
}

TEST(FixTransportChecksum, Ipv6UdpTcpIcmpv6) {
    expect_fixes(v6(IPPROTO_UDP, "hello, wireguard"));
    expect_fixes(v6(IPPROTO_UDP, "odd"));
    expect_fixes(v6(IPPROTO_TCP, std::string(1400, 'z')));
    expect_fixes(v6(IPPROTO_ICMPV6, "ping payload"));
}

TEST(FixTransportChecksum, Ipv6ExtensionHeaders) {
    // Hop-by-hop (8 bytes: next, len 0, PadN) before UDP.
    expect_fixes(v6(IPPROTO_UDP, "via hbh", {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0}, IPPROTO_HOPOPTS));
    // Hop-by-hop then destination options (16 bytes) before TCP.
    Bytes ext = {IPPROTO_DSTOPTS, 0, 1, 4, 0, 0, 0, 0, IPPROTO_TCP, 1, 1, 12};
    ext.resize(24, 0);
    expect_fixes(v6(IPPROTO_TCP, "via two", ext, IPPROTO_HOPOPTS));
    // Routing header with no segments left: the destination is final.
    expect_fixes(v6(IPPROTO_UDP, "routed", {IPPROTO_UDP, 0, 0, 0, 0, 0, 0, 0}, IPPROTO_ROUTING));
    // With segments left the pseudo-header destination is not the IPv6 one: left alone.
    Bytes routing = {IPPROTO_UDP, 2, 0, 1, 0, 0, 0, 0};
    routing.resize(24, 0);  // one address
    expect_untouched(v6(IPPROTO_UDP, "routed", routing, IPPROTO_ROUTING).packet);
}

TEST(FixTransportChecksum, UdpZeroBecomesAllOnes) {
    // Two payload bytes equal to the checksum without them make the sum 0xffff, whose
    // complement 0 must be sent as 0xffff.
    Bytes seg = segment(IPPROTO_UDP, std::string(2, '\0'));
    checksum_segment(seg, IPPROTO_UDP, ipv4_src(), ipv4_dst());
    uint16_t c = get16(seg, 6);
    put16(seg, 8, c);
    Bytes p = ipv4_packet(IPPROTO_UDP, seg);
    put16(p, 26, 0);
    EXPECT_TRUE(fix_transport_checksum(p));
    EXPECT_EQ(get16(p, 26), 0xffff);
    // And the reference agrees that the segment now verifies.
    Bytes check = seg;
    checksum_segment(check, IPPROTO_UDP, ipv4_src(), ipv4_dst());
    EXPECT_EQ(get16(check, 6), 0xffff);
}

TEST(FixTransportChecksum, LeavesOtherPacketsAlone) {
    Bytes icmp = {8, 0, 0x12, 0x34, 0, 1, 0, 1, 'p', 'i', 'n', 'g'};
    expect_untouched(ipv4_packet(IPPROTO_ICMP, icmp));
    expect_untouched(ipv4_packet(47, Bytes(24, 0x55)));  // GRE
    Bytes seg = segment(IPPROTO_UDP, "fragment");
    expect_untouched(ipv4_packet(IPPROTO_UDP, seg, 0x2000));  // MF
    expect_untouched(ipv4_packet(IPPROTO_UDP, seg, 0x0010));  // offset 128
    Bytes frag = {IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 7};          // IPv6 fragment header, MF
    expect_untouched(ipv6_packet(IPPROTO_FRAGMENT, frag, seg));
    expect_untouched({});
    expect_untouched({0x50, 1, 2, 3});  // version 5
}

TEST(FixTransportChecksum, TruncatedPacketsUntouched) {
    for (const Variant& v :
         {v4(IPPROTO_UDP, "truncate me"), v4(IPPROTO_TCP, "truncate me"),
          v6(IPPROTO_UDP, "truncate me"), v6(IPPROTO_ICMPV6, "truncate"),
          v6(IPPROTO_UDP, "hbh", {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0}, IPPROTO_HOPOPTS)}) {
        Bytes zeroed = v.packet;
        put16(zeroed, v.check_at, 0);
        for (size_t len = 0; len < zeroed.size(); ++len) {
            SCOPED_TRACE(std::string(v.name) + " cut at " + std::to_string(len));
            // Exact-size copies so ASan catches any read past the end.
            expect_untouched(Bytes(zeroed.begin(), zeroed.begin() + static_cast<long>(len)));
        }
    }
}

TEST(FixTransportChecksum, InconsistentLengthsUntouched) {
    Variant udp = v4(IPPROTO_UDP, "lengths");
    Bytes p = udp.packet;
    p[0] = 0x4f;  // IHL 60 > total length 35
    put16(p, 2, 35);
    expect_untouched(p);
    p = udp.packet;
    put16(p, 24, 200);  // UDP length beyond the IP payload
    expect_untouched(p);
    put16(p, 24, 7);  // UDP length below its header
    expect_untouched(p);
    expect_untouched(ipv4_packet(IPPROTO_TCP, Bytes(19, 0)));  // TCP shorter than a header
    expect_untouched(ipv6_packet(IPPROTO_ICMPV6, {}, {128, 0, 0}));
    // Hop-by-hop header claiming more bytes than the payload has.
    expect_untouched(ipv6_packet(IPPROTO_HOPOPTS, {IPPROTO_UDP, 5, 1, 4, 0, 0, 0, 0},
                                 segment(IPPROTO_UDP, "x")));
    // IPv6 jumbogram marker (payload length 0) is not handled.
    Bytes jumbo = v6(IPPROTO_UDP, "j").packet;
    put16(jumbo, 4, 0);
    expect_untouched(jumbo);
}

TEST(FixTransportChecksum, UsesLengthsFromHeadersNotBuffer) {
    // Trailing bytes after the IP total length (link padding) are neither summed nor
    // changed; for UDP only the UDP length counts.
    for (Variant v :
         {v4(IPPROTO_UDP, "padded"), v4(IPPROTO_TCP, "padded"), v6(IPPROTO_UDP, "padded")}) {
        Bytes p = v.packet;
        put16(p, v.check_at, 0);
        p.insert(p.end(), {0xaa, 0xbb, 0xcc});
        EXPECT_TRUE(fix_transport_checksum(p));
        Bytes expected = v.packet;
        expected.insert(expected.end(), {0xaa, 0xbb, 0xcc});
        EXPECT_EQ(p, expected);
    }
}

}  // namespace
}  // namespace nb
