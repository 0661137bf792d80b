#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "agent/wg/key.hpp"
#include "agent/wg/wg_control.hpp"
#include "base/net/ip.hpp"

namespace nb {
namespace {

IpPrefix P(const char* s) {
    auto p = IpPrefix::parse(s);
    EXPECT_TRUE(p) << s;
    return p.value_or(IpPrefix{});
}

IpAddr A(const char* s) {
    auto a = IpAddr::parse(s);
    EXPECT_TRUE(a) << s;
    return a.value_or(IpAddr{});
}

TEST(IpAddr, ParsesV4AndV6) {
    auto a = IpAddr::parse("10.1.2.3");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->family, AF_INET);
    EXPECT_EQ(a->bytes[0], 10);
    EXPECT_EQ(a->bytes[3], 3);
    EXPECT_EQ(a->bytes[4], 0);
    EXPECT_EQ(a->str(), "10.1.2.3");
    EXPECT_EQ(a->max_prefix(), 32);

    auto b = IpAddr::parse("FD00:0::0001");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->family, AF_INET6);
    EXPECT_EQ(b->bytes[0], 0xfd);
    EXPECT_EQ(b->bytes[15], 1);
    EXPECT_EQ(b->str(), "fd00::1");
    EXPECT_EQ(b->max_prefix(), 128);

    EXPECT_EQ(A("::ffff:1.2.3.4").family, AF_INET6);
}

// str() writes IPv6 itself (inet_ntop's sprintf per group was most of a big status reply):
// it must match inet_ntop on every shape of zero runs.
TEST(IpAddr, FormatsLikeInetNtop) {
    std::mt19937 rng(12345);
    auto check = [](const IpAddr& a) {
        char buf[INET6_ADDRSTRLEN] = {};
        ASSERT_NE(inet_ntop(a.family, a.bytes.data(), buf, sizeof buf), nullptr);
        EXPECT_EQ(a.str(), std::string(buf));
    };
    for (int n = 0; n < 20000; ++n) {
        IpAddr a;
        a.family = AF_INET6;
        // Each group zero, small or large at random: every run length and position.
        for (int g = 0; g < 8; ++g) {
            uint32_t kind = rng() % 3, v = kind == 0 ? 0 : kind == 1 ? rng() % 16 : rng() % 65536;
            a.bytes[2 * g] = static_cast<uint8_t>(v >> 8);
            a.bytes[2 * g + 1] = static_cast<uint8_t>(v);
        }
        check(a);
        IpAddr b;  // and IPv4
        uint32_t v4 = rng();
        if (n % 4 == 0) v4 &= 0xff00ff00;  // zero octets
        b = IpAddr::v4(v4);
        check(b);
    }
    for (const char* s :
         {"::", "::1", "::ffff:1.2.3.4", "::1.2.3.4", "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
          "1:0:0:2:0:0:0:3", "fd10:101::3:e8", "0.0.0.0", "255.255.255.255"})
        check(*IpAddr::parse(s));
    EXPECT_EQ(IpPrefix::parse("fd10:101::3:e8/128")->str(), "fd10:101::3:e8/128");
    EXPECT_EQ(SockAddr::parse_numeric("[fd00::1]:51820")->str(), "[fd00::1]:51820");
    EXPECT_EQ(SockAddr::parse_numeric("10.0.0.1:1")->str(), "10.0.0.1:1");
}

TEST(IpAddr, RejectsGarbage) {
    for (const char* s :
         {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4/8", "fd00:::1",
          "fd00::1%eth0", "[fd00::1]", "host", "1.2.3.4x", "::g"})
        EXPECT_FALSE(IpAddr::parse(s)) << s;
    EXPECT_FALSE(IpAddr::parse(std::string("1.2.3.4\0", 8)));
    EXPECT_FALSE(IpAddr::parse(std::string(100, '1')));
}

TEST(IpAddr, Ordering) {
    EXPECT_LT(A("10.0.0.1"), A("10.0.0.2"));
    EXPECT_NE(A("10.0.0.1"), A("::a00:1"));
    EXPECT_EQ(A("10.0.0.1"), A("10.0.0.1"));
}

TEST(IpPrefix, ParsesWithAndWithoutLength) {
    bool hb = true;
    auto p = IpPrefix::parse("10.0.0.0/24", &hb);
    ASSERT_TRUE(p);
    EXPECT_FALSE(hb);
    EXPECT_EQ(p->len, 24);
    EXPECT_EQ(p->str(), "10.0.0.0/24");
    EXPECT_FALSE(p->is_host());

    auto h = IpPrefix::parse("10.0.0.7", &hb);
    ASSERT_TRUE(h);
    EXPECT_FALSE(hb);
    EXPECT_EQ(h->len, 32);
    EXPECT_TRUE(h->is_host());

    auto h6 = IpPrefix::parse("fd00::7");
    ASSERT_TRUE(h6);
    EXPECT_EQ(h6->len, 128);
    EXPECT_EQ(h6->str(), "fd00::7/128");

    EXPECT_EQ(P("0.0.0.0/0").len, 0);
    EXPECT_EQ(P("::/0").str(), "::/0");
}

TEST(IpPrefix, ClearsHostBitsAndReportsThem) {
    bool hb = false;
    auto p = IpPrefix::parse("10.1.2.3/20", &hb);
    ASSERT_TRUE(p);
    EXPECT_TRUE(hb);
    EXPECT_EQ(p->str(), "10.1.0.0/20");

    p = IpPrefix::parse("fd00:1:2:3::ff/63", &hb);
    ASSERT_TRUE(p);
    EXPECT_TRUE(hb);
    EXPECT_EQ(p->str(), "fd00:1:2:2::/63");

    p = IpPrefix::parse("10.255.255.255/0", &hb);
    ASSERT_TRUE(p);
    EXPECT_TRUE(hb);
    EXPECT_EQ(p->str(), "0.0.0.0/0");

    p = IpPrefix::parse("10.1.2.0/24", &hb);
    ASSERT_TRUE(p);
    EXPECT_FALSE(hb);
    EXPECT_TRUE(IpPrefix::parse("10.1.2.3/24"));  // null had_host_bits is fine
}

TEST(IpPrefix, RejectsBadInput) {
    for (const char* s :
         {"", "/24", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/ 8",
          "10.0.0.0 /8", "10.0.0.0/8 ", " 10.0.0.0/8", "10.0.0.0/8/8", "10.0.0.0/8x", "fd00::/129",
          "fd00::/1000", "10.0.0/8", "x/8", "10.0.0.0/0x8"})
        EXPECT_FALSE(IpPrefix::parse(s)) << s;
    EXPECT_TRUE(IpPrefix::parse("fd00::/128"));
    EXPECT_TRUE(IpPrefix::parse("10.0.0.0/32"));
}

TEST(IpPrefix, Contains) {
    auto p = P("10.1.0.0/16");
    EXPECT_TRUE(p.contains(A("10.1.0.0")));
    EXPECT_TRUE(p.contains(A("10.1.255.255")));
    EXPECT_FALSE(p.contains(A("10.2.0.0")));
    EXPECT_FALSE(p.contains(A("::a01:0")));  // family must match
    auto odd = P("10.1.128.0/17");
    EXPECT_TRUE(odd.contains(A("10.1.200.1")));
    EXPECT_FALSE(odd.contains(A("10.1.127.1")));
    EXPECT_TRUE(P("0.0.0.0/0").contains(A("1.2.3.4")));
    EXPECT_FALSE(P("0.0.0.0/0").contains(A("::1")));
    EXPECT_TRUE(P("10.0.0.1").contains(A("10.0.0.1")));
    EXPECT_FALSE(P("10.0.0.1").contains(A("10.0.0.2")));
    EXPECT_TRUE(P("fd00::/8").contains(A("fdff::1")));
    EXPECT_FALSE(P("fd00::/8").contains(A("fe00::1")));
}

TEST(IpPrefix, Overlaps) {
    EXPECT_TRUE(P("10.0.0.0/8").overlaps(P("10.1.0.0/16")));
    EXPECT_TRUE(P("10.1.0.0/16").overlaps(P("10.0.0.0/8")));
    EXPECT_FALSE(P("10.1.0.0/16").overlaps(P("10.2.0.0/16")));
    EXPECT_TRUE(P("10.1.0.0/16").overlaps(P("10.1.0.0/16")));
    EXPECT_FALSE(P("0.0.0.0/0").overlaps(P("::/0")));
    EXPECT_TRUE(P("10.0.0.0/9").overlaps(P("10.127.0.1")));
    EXPECT_FALSE(P("10.0.0.0/9").overlaps(P("10.128.0.1")));
}

TEST(SockAddr, FromAndAccessors) {
    auto s = SockAddr::from(A("192.0.2.1"), 51820);
    EXPECT_EQ(s.family(), AF_INET);
    EXPECT_EQ(s.len, sizeof(sockaddr_in));
    EXPECT_EQ(s.port(), 51820);
    EXPECT_EQ(s.ip(), A("192.0.2.1"));
    EXPECT_EQ(s.str(), "192.0.2.1:51820");
    auto* in = reinterpret_cast<const sockaddr_in*>(&s.ss);
    EXPECT_EQ(ntohs(in->sin_port), 51820);

    auto s6 = SockAddr::from(A("fd00::1"), 1);
    EXPECT_EQ(s6.family(), AF_INET6);
    EXPECT_EQ(s6.len, sizeof(sockaddr_in6));
    EXPECT_EQ(s6.port(), 1);
    EXPECT_EQ(s6.ip(), A("fd00::1"));
    EXPECT_EQ(s6.str(), "[fd00::1]:1");
}

TEST(SockAddr, ParseNumericRoundTrips) {
    for (const char* s : {"1.2.3.4:51820", "[fd00::1]:65535", "[::]:1", "0.0.0.0:9"}) {
        auto a = SockAddr::parse_numeric(s);
        ASSERT_TRUE(a) << s;
        EXPECT_EQ(a->str(), s);
        EXPECT_EQ(*a, *SockAddr::parse_numeric(a->str()));
    }
    EXPECT_EQ(SockAddr::parse_numeric("[FD00:0::1]:80")->str(), "[fd00::1]:80");
    EXPECT_FALSE(*SockAddr::parse_numeric("1.2.3.4:1") == *SockAddr::parse_numeric("1.2.3.4:2"));
}

TEST(SockAddr, ParseNumericRejects) {
    for (const char* s :
         {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:99999", "1.2.3.4:-1",
          "1.2.3.4:80x", "fd00::1:80", "[fd00::1]", "[fd00::1]80", "[1.2.3.4]:80", "example.com:80",
          "[]:80", ":80", "1.2.3.4: 80", " 1.2.3.4:80", "[fd00::1]:80 ", "1.2.3.4:000080"})
        EXPECT_FALSE(SockAddr::parse_numeric(s)) << s;
}

TEST(SplitHostPort, Accepts) {
    std::string host;
    uint16_t port = 0;
    ASSERT_TRUE(split_host_port("vpn.example.com:51820", host, port));
    EXPECT_EQ(host, "vpn.example.com");
    EXPECT_EQ(port, 51820);
    ASSERT_TRUE(split_host_port("[fd00::1]:1", host, port));
    EXPECT_EQ(host, "fd00::1");
    EXPECT_EQ(port, 1);
    ASSERT_TRUE(split_host_port("1.2.3.4:65535", host, port));
    EXPECT_EQ(host, "1.2.3.4");
    EXPECT_EQ(port, 65535);
}

TEST(SplitHostPort, Rejects) {
    for (const char* s :
         {"", "host", "host:", ":1", "host:0", "host:65536", "host:1a", "a:b:1", "[fd00::1]",
          "[fd00::1]:", "[fd00::1:1", "[]:1", "[a]b]:1", "host:+1", "ho]st:1"}) {
        std::string host = "unchanged";
        uint16_t port = 7;
        EXPECT_FALSE(split_host_port(s, host, port)) << s;
        EXPECT_EQ(host, "unchanged") << s;
        EXPECT_EQ(port, 7) << s;
    }
}

// wg genkey output and its known hex form (computed independently with base64 -d | xxd).
constexpr const char* kB64 = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
constexpr const char* kHex = "c809f3e5317e9575c9b5ed78b638b7ce530dabe85ddab614220241801ddf0669";

TEST(WgKey, Base64RoundTripAndHex) {
    auto k = WgKey::from_base64(kB64);
    ASSERT_TRUE(k);
    EXPECT_EQ(k->base64(), kB64);
    EXPECT_EQ(k->hex(), std::string(kHex));
    EXPECT_FALSE(k->is_zero());

    auto h = WgKey::from_hex(std::string(kHex));
    ASSERT_TRUE(h);
    EXPECT_EQ(*h, *k);
    std::string upper = std::string(kHex);
    for (char& c : upper) c = static_cast<char>(toupper(c));
    EXPECT_EQ(*WgKey::from_hex(upper), *k);
}

TEST(WgKey, AllByteValuesRoundTrip) {
    for (int start = 0; start < 256; start += 32) {
        WgKey k;
        for (int i = 0; i < 32; ++i) k.bytes[i] = static_cast<uint8_t>(start + i);
        auto b = WgKey::from_base64(k.base64());
        ASSERT_TRUE(b) << k.base64();
        EXPECT_EQ(*b, k);
        auto h = WgKey::from_hex(k.hex());
        ASSERT_TRUE(h);
        EXPECT_EQ(*h, k);
    }
    WgKey ff;
    ff.bytes.fill(0xff);
    EXPECT_EQ(ff.base64(), "//////////////////////////////////////////8=");
}

TEST(WgKey, ZeroKey) {
    WgKey z;
    EXPECT_TRUE(z.is_zero());
    EXPECT_EQ(z.base64(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    EXPECT_EQ(z.hex(), std::string(64, '0'));
    auto p = WgKey::from_base64(z.base64());
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->is_zero());
    z.bytes[31] = 1;
    EXPECT_FALSE(z.is_zero());
}

TEST(WgKey, Base64Rejects) {
    std::string good = kB64;
    EXPECT_FALSE(WgKey::from_base64(""));
    EXPECT_FALSE(WgKey::from_base64(good.substr(0, 43)));  // no padding
    EXPECT_FALSE(WgKey::from_base64(good + "="));          // too long
    std::string junk_first = " " + good;                   // leading junk
    junk_first.pop_back();
    EXPECT_FALSE(WgKey::from_base64(junk_first));
    EXPECT_FALSE(WgKey::from_base64(good.substr(0, 42) + "=="));  // wrong padding
    std::string bad = good;
    bad[10] = '-';  // base64url alphabet is not accepted
    EXPECT_FALSE(WgKey::from_base64(bad));
    bad = good;
    bad[10] = '=';
    EXPECT_FALSE(WgKey::from_base64(bad));
    bad = good;
    bad[43] = 'A';
    EXPECT_FALSE(WgKey::from_base64(bad));
    // Last significant char 'k' = 36 = 0b100100: low 2 bits are zero. 'l' sets a
    // padding bit and decodes to the same bytes, so it is non-canonical.
    bad = good;
    bad[42] = 'l';
    EXPECT_FALSE(WgKey::from_base64(bad));
    bad[42] = 'm';
    EXPECT_FALSE(WgKey::from_base64(bad));
    bad[42] = 'n';
    EXPECT_FALSE(WgKey::from_base64(bad));
    bad[42] = 'o';  // 40: canonical, different key
    auto other = WgKey::from_base64(bad);
    ASSERT_TRUE(other);
    EXPECT_NE(*other, *WgKey::from_base64(good));
}

TEST(WgKey, HexRejects) {
    std::string h = std::string(kHex);
    EXPECT_FALSE(WgKey::from_hex(""));
    EXPECT_FALSE(WgKey::from_hex(h.substr(0, 63)));
    EXPECT_FALSE(WgKey::from_hex(h + "0"));
    std::string bad = h;
    bad[5] = 'g';
    EXPECT_FALSE(WgKey::from_hex(bad));
    bad[5] = ' ';
    EXPECT_FALSE(WgKey::from_hex(bad));
    EXPECT_FALSE(WgKey::from_hex("0x" + h.substr(2)));
}

TEST(WgKey, HashDistinguishesKeysDifferingInLastByte) {
    WgKey a, b;
    b.bytes[31] = 1;
    WgKeyHash hash;
    EXPECT_EQ(hash(a), hash(WgKey{}));
    EXPECT_NE(hash(a), hash(b));
}

TEST(WgControl, RemovePeerOp) {
    auto k = *WgKey::from_base64(kB64);
    PeerUpdate op = remove_peer_op(k);
    EXPECT_EQ(op.public_key, k);
    EXPECT_TRUE(op.remove);
    EXPECT_FALSE(op.update_only);
    EXPECT_FALSE(op.endpoint);
    EXPECT_TRUE(op.allowed_ips.empty());
}

TEST(WgControl, ReaddPeerOpDropsEndpointAndKeepalive) {
    WgPeer peer;
    peer.public_key = *WgKey::from_base64(kB64);
    WgKey psk;
    psk.bytes[0] = 9;
    peer.preshared_key = psk;
    peer.allowed_ips = {P("10.0.0.2"), P("fd00::/64")};
    peer.endpoint = SockAddr::parse_numeric("192.0.2.1:51820");
    peer.persistent_keepalive = 25;
    peer.rx_bytes = 5;

    PeerUpdate op = readd_peer_op(peer);
    EXPECT_EQ(op.public_key, peer.public_key);
    EXPECT_FALSE(op.remove);
    EXPECT_TRUE(op.replace_allowed_ips);
    ASSERT_TRUE(op.preshared_key);
    EXPECT_EQ(*op.preshared_key, psk);
    EXPECT_EQ(op.allowed_ips, peer.allowed_ips);
    EXPECT_FALSE(op.endpoint);
    ASSERT_TRUE(op.persistent_keepalive);
    EXPECT_EQ(*op.persistent_keepalive, 0);

    peer.preshared_key.reset();
    EXPECT_FALSE(readd_peer_op(peer).preshared_key);
}

}  // namespace
}  // namespace nb
