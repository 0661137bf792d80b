#include "agent/config/wg_quick.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "tests/support/fuzz_seed.hpp"

namespace nb {
namespace {

constexpr const char* kPriv = "YJi5kQCEUXd+h4qG3MY3eRtozbnyaFEhV/tX6AOPD0w=";
constexpr const char* kPub1 = "MHyE4j8U5jQ9ZbKADR10wG2O2V1C0RXPwvXGau6JGUM=";
constexpr const char* kPub2 = "MIs9ddeUrmfsGGKqvxMgo7vh4etWTMZGodd077oyO2A=";
constexpr const char* kPsk = "GM+wtP8U5MWCJMtqO8TIB0e5/+xRgBo0iBAWtJMvakk=";

WgQuickConfig parse(const std::string& text) {
    test::fuzz_seed("wg_quick_config", text);
    return parse_wg_quick(text, "t.conf");
}

IpPrefix prefix(const char* s) {
    auto p = IpPrefix::parse(s);
    EXPECT_TRUE(p) << s;
    return p.value_or(IpPrefix{});
}

// Asserts that parsing fails with a message starting "t.conf:<line>: " and containing
// `needle`.
void expect_error(const std::string& text, int line, const std::string& needle) {
    try {
        parse(text);
        ADD_FAILURE() << "no error; expected line " << line << ": " << needle << "\n" << text;
    } catch (const ConfigError& e) {
        std::string msg = e.what();
        std::string want = "t.conf:" + std::to_string(line) + ": ";
        EXPECT_EQ(msg.substr(0, want.size()), want) << msg;
        EXPECT_NE(msg.find(needle), std::string::npos) << msg << "\n(wanted: " << needle << ")";
    }
}

std::string peer(const char* pub, const char* allowed) {
    return std::string("[Peer]\nPublicKey = ") + pub + "\nAllowedIPs = " + allowed + "\n";
}

TEST(WgQuick, FullConfig) {
    std::string text = std::string() +
                       "# a comment\n"
                       "[Interface]\n"
                       "PrivateKey = " +
                       kPriv +
                       "\n"
                       "ListenPort = 51820\n"
                       "Address = 10.0.0.1/24, fd00::1/64\n"
                       "Address = 10.9.9.9\n"
                       "FwMark = 0x1F\n"
                       "MTU = 1420\n"
                       "\n"
                       "[Peer]\n"
                       "PublicKey = " +
                       kPub1 +
                       "\n"
                       "PresharedKey = " +
                       kPsk +
                       "\n"
                       "AllowedIPs = 10.0.0.2/32, fd00::2/128\n"
                       "AllowedIPs = 192.168.0.0/16\n"
                       "Endpoint = vpn.example.com:51820\n"
                       "PersistentKeepalive = 25\n"
                       "Connector = exec:/usr/bin/find-peer --key x\n"
                       "Group = routers, site-a\n"
                       "Lazy = off\n"
                       "[Peer]\n"
                       "PublicKey = " +
                       kPub2 +
                       "\n"
                       "AllowedIPs = 10.0.0.3\n"
                       "Endpoint = [fd00::3]:1\n";
    auto cfg = parse(text);
    EXPECT_EQ(cfg.iface.private_key->base64(), kPriv);
    EXPECT_EQ(*cfg.iface.listen_port, 51820);
    EXPECT_EQ(*cfg.iface.fwmark, 0x1fu);
    EXPECT_EQ(*cfg.iface.mtu, 1420u);
    ASSERT_EQ(cfg.iface.addresses.size(), 3u);
    // Interface addresses keep their host bits.
    EXPECT_EQ(cfg.iface.addresses[0].str(), "10.0.0.1/24");
    EXPECT_EQ(cfg.iface.addresses[1].str(), "fd00::1/64");
    EXPECT_EQ(cfg.iface.addresses[2].str(), "10.9.9.9/32");
    EXPECT_TRUE(cfg.warnings.empty());

    ASSERT_EQ(cfg.peers.size(), 2u);
    const auto& p1 = cfg.peers[0];
    EXPECT_EQ(p1.line, 10);
    EXPECT_EQ(p1.public_key.base64(), kPub1);
    EXPECT_EQ(p1.preshared_key->base64(), kPsk);
    ASSERT_EQ(p1.allowed_ips.size(), 3u);
    EXPECT_EQ(p1.allowed_ips[0], prefix("10.0.0.2/32"));
    EXPECT_EQ(p1.allowed_ips[1], prefix("fd00::2/128"));
    EXPECT_EQ(p1.allowed_ips[2], prefix("192.168.0.0/16"));
    EXPECT_EQ(*p1.endpoint, "vpn.example.com:51820");
    EXPECT_EQ(p1.persistent_keepalive, 25);
    EXPECT_EQ(*p1.connector, "exec:/usr/bin/find-peer --key x");
    EXPECT_EQ(p1.groups, (std::vector<std::string>{"routers", "site-a"}));
    EXPECT_FALSE(p1.lazy);

    const auto& p2 = cfg.peers[1];
    EXPECT_EQ(p2.line, 20);
    EXPECT_EQ(p2.public_key.base64(), kPub2);
    EXPECT_FALSE(p2.preshared_key);
    EXPECT_EQ(p2.allowed_ips, std::vector<IpPrefix>{prefix("10.0.0.3/32")});
    EXPECT_EQ(*p2.endpoint, "[fd00::3]:1");
    EXPECT_EQ(p2.persistent_keepalive, 0);
    EXPECT_FALSE(p2.connector);
    EXPECT_TRUE(p2.groups.empty());
    EXPECT_TRUE(p2.lazy);
}

TEST(WgQuick, EmptyAndInterfaceOnly) {
    auto cfg = parse("");
    EXPECT_FALSE(cfg.iface.private_key);
    EXPECT_TRUE(cfg.peers.empty());
    cfg = parse("\n# nothing\n   \n");
    EXPECT_TRUE(cfg.peers.empty());
    // A missing PrivateKey is the caller's decision, not a parse error.
    cfg = parse("[Interface]\nListenPort = 1\n");
    EXPECT_FALSE(cfg.iface.private_key);
    EXPECT_EQ(*cfg.iface.listen_port, 1);
    EXPECT_FALSE(cfg.iface.fwmark);
    EXPECT_FALSE(cfg.iface.mtu);
}

TEST(WgQuick, CaseInsensitiveWhitespaceCommentsCrlf) {
    std::string text = std::string() + "  [interface]  # trailing\r\n" + "\tprivatekey\t=\t" +
                       kPriv + "   #c\r\n" + "LISTENPORT=7\r\n" + "\r\n" +
                       "# full line = comment\r\n" + "[PEER]\r\n" + "pUbLiCkEy =" + kPub1 + "\r\n" +
                       "allowedips=10.0.0.0/8 ,  fd00::/8,10.1.0.0/16\r\n" +
                       "persistentkeepalive = off\r\n" + "endpoint = 192.0.2.1:9 # where\r\n";
    auto cfg = parse(text);
    EXPECT_EQ(cfg.iface.private_key->base64(), kPriv);
    EXPECT_EQ(*cfg.iface.listen_port, 7);
    ASSERT_EQ(cfg.peers.size(), 1u);
    EXPECT_EQ(cfg.peers[0].line, 6);
    EXPECT_EQ(cfg.peers[0].public_key.base64(), kPub1);
    ASSERT_EQ(cfg.peers[0].allowed_ips.size(), 3u);
    EXPECT_EQ(cfg.peers[0].allowed_ips[1], prefix("fd00::/8"));
    EXPECT_EQ(cfg.peers[0].persistent_keepalive, 0);
    EXPECT_EQ(*cfg.peers[0].endpoint, "192.0.2.1:9");
    // No trailing newline at all.
    cfg = parse(std::string("[Peer]\nPublicKey = ") + kPub1);
    EXPECT_EQ(cfg.peers.size(), 1u);
}

TEST(WgQuick, IgnoredWgQuickKeysWarn) {
    std::string text = std::string() + "[Interface]\n" + "DNS = 1.1.1.1, 8.8.8.8\n" +
                       "Table = off\n" + "PreUp = echo hi\n" + "PostUp = iptables -A x\n" +
                       "PreDown = true\n" + "postdown = false\n" + "SaveConfig = true\n" +
                       "dns = 9.9.9.9\n";
    auto cfg = parse(text);
    ASSERT_EQ(cfg.warnings.size(), 8u);
    EXPECT_EQ(cfg.warnings[0], "t.conf:2: ignoring wg-quick-only key 'DNS'");
    EXPECT_EQ(cfg.warnings[5], "t.conf:7: ignoring wg-quick-only key 'postdown'");
    EXPECT_EQ(cfg.warnings[7], "t.conf:9: ignoring wg-quick-only key 'dns'");
    // They are [Interface]-only keys.
    expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nDNS = 1.1.1.1\n", 3,
                 "unknown key 'DNS' in [Peer]");
}

TEST(WgQuick, FwMarkForms) {
    EXPECT_EQ(*parse("[Interface]\nFwMark = 51820\n").iface.fwmark, 51820u);
    EXPECT_EQ(*parse("[Interface]\nFwMark = 0xca6c\n").iface.fwmark, 0xca6cu);
    EXPECT_EQ(*parse("[Interface]\nFwMark = 0XFFFFFFFF\n").iface.fwmark, 0xffffffffu);
    EXPECT_EQ(*parse("[Interface]\nFwMark = 4294967295\n").iface.fwmark, 0xffffffffu);
    EXPECT_EQ(*parse("[Interface]\nFwMark = off\n").iface.fwmark, 0u);
    EXPECT_EQ(*parse("[Interface]\nFwMark = 0\n").iface.fwmark, 0u);
    for (const char* bad : {"4294967296", "0x100000000", "0x", "-1", "1.5", "0xg", "on", ""})
        expect_error(std::string("[Interface]\nFwMark = ") + bad + "\n", 2, "invalid FwMark");
}

TEST(WgQuick, NumberRanges) {
    EXPECT_EQ(*parse("[Interface]\nListenPort = 65535\n").iface.listen_port, 65535);
    for (const char* bad : {"0", "65536", "-1", "+5", "5x", "", "1 2", "99999999999999999999999"})
        expect_error(std::string("[Interface]\nListenPort = ") + bad + "\n", 2,
                     "invalid ListenPort");
    EXPECT_EQ(*parse("[Interface]\nMTU = 68\n").iface.mtu, 68u);
    for (const char* bad : {"67", "65536", "abc"})
        expect_error(std::string("[Interface]\nMTU = ") + bad + "\n", 2, "invalid MTU");
    auto ka = [](const char* v) {
        return parse(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nPersistentKeepalive = " + v +
                     "\n")
            .peers[0]
            .persistent_keepalive;
    };
    EXPECT_EQ(ka("0"), 0);
    EXPECT_EQ(ka("65535"), 65535);
    EXPECT_EQ(ka("OFF"), 0);
    for (const char* bad : {"65536", "-1", "never", "25s"})
        expect_error(
            std::string("[Peer]\nPublicKey = ") + kPub1 + "\nPersistentKeepalive = " + bad + "\n",
            3, "invalid PersistentKeepalive");
}

TEST(WgQuick, StructuralErrors) {
    expect_error("[Interface]\nListenPort 51820\n", 2, "malformed line");
    expect_error("[Interface]\n= 5\n", 2, "missing key");
    expect_error("\n\nListenPort = 1\n", 3, "key 'ListenPort' outside of a section");
    expect_error("[Interface]\n[Foo]\n", 2, "unknown section '[Foo]'");
    expect_error("[Peer\n", 1, "malformed section header");
    expect_error("[Interface]\nListenPort = 1\nBogus = 2\n", 3,
                 "unknown key 'Bogus' in [Interface]");
    expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nListenPort = 1\n", 3,
                 "unknown key 'ListenPort' in [Peer]");
    expect_error("[Interface]\nPublicKey = x\n", 2, "unknown key 'PublicKey' in [Interface]");
}

TEST(WgQuick, BadKeys) {
    expect_error("[Interface]\nPrivateKey = abc\n", 2, "invalid PrivateKey");
    expect_error("[Interface]\nPrivateKey =\n", 2, "invalid PrivateKey");
    std::string bad = kPub1;
    bad[42] = 'N';  // sets padding bits: non-canonical
    expect_error("[Peer]\nPublicKey = " + bad + "\n", 2, "invalid PublicKey");
    expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nPresharedKey = " + kPub1 + "x\n",
                 3, "invalid PresharedKey");
}

TEST(WgQuick, DuplicateSingleValuedKeys) {
    expect_error("[Interface]\nListenPort = 1\n\nlistenport = 2\n", 4,
                 "duplicate key 'listenport' (first set at line 2)");
    expect_error(std::string("[Interface]\nPrivateKey = ") + kPriv +
                     "\n[Interface]\nPrivateKey = " + kPriv + "\n",
                 4, "first set at line 2");
    expect_error("[Interface]\nMTU = 1400\nMTU = 1400\n", 3, "duplicate key 'MTU'");
    expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nEndpoint = a:1\nEndpoint = b:1\n",
                 4, "duplicate key 'Endpoint' (first set at line 3)");
    // Per-peer keys reset with each [Peer].
    auto cfg = parse(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nEndpoint = a:1\n" +
                     "[Peer]\nPublicKey = " + kPub2 + "\nEndpoint = b:1\n");
    EXPECT_EQ(cfg.peers.size(), 2u);
}

TEST(WgQuick, DuplicatePublicKeyNamesBothPeers) {
    std::string text = peer(kPub1, "10.0.0.1") + "\n" + peer(kPub2, "10.0.0.2") +
                       "[Peer]\nAllowedIPs = 10.0.0.3\nPublicKey = " + kPub1 + "\n";
    expect_error(text, 10, "duplicate PublicKey");
    expect_error(text, 10, "the peer at line 1 already uses it");
}

TEST(WgQuick, PeerWithoutPublicKey) {
    expect_error(peer(kPub1, "10.0.0.1") + "\n[Peer]\nAllowedIPs = 10.0.0.2\n\n[Interface]\n", 5,
                 "[Peer] has no PublicKey");
    expect_error(peer(kPub1, "10.0.0.1") + "[Peer]\nEndpoint = a:1\n", 4,
                 "[Peer] has no PublicKey");
    expect_error("[Peer]\n", 1, "[Peer] has no PublicKey");
}

TEST(WgQuick, InterfaceAddresses) {
    auto cfg = parse("[Interface]\nAddress = 10.1.2.3/8,fd00::abcd/48\n");
    ASSERT_EQ(cfg.iface.addresses.size(), 2u);
    EXPECT_EQ(cfg.iface.addresses[0].addr, *IpAddr::parse("10.1.2.3"));
    EXPECT_EQ(cfg.iface.addresses[0].len, 8);
    EXPECT_EQ(cfg.iface.addresses[1].addr, *IpAddr::parse("fd00::abcd"));
    EXPECT_EQ(cfg.iface.addresses[1].len, 48);
    for (const char* bad : {"10.0.0.1/33", "10.0.0.1/", "host", "10.0.0.1/8x", "fd00::1/129",
                            "10.0.0.1/-1", "10.0.0.1 /8"})
        expect_error(std::string("[Interface]\nAddress = ") + bad + "\n", 2, "invalid address");
    expect_error("[Interface]\nAddress = 10.0.0.1/8,,10.0.0.2\n", 2, "empty item in Address");
    expect_error("[Interface]\nAddress = 10.0.0.1/8,\n", 2, "empty item in Address");
    expect_error("[Interface]\nAddress =\n", 2, "empty item in Address");
}

TEST(WgQuick, AllowedIps) {
    auto cfg = parse(peer(kPub1, "10.0.0.1/24, 10.0.0.0/24, fd00::1/64"));
    ASSERT_EQ(cfg.peers[0].allowed_ips.size(), 2u);  // the repeat within one peer is dropped
    EXPECT_EQ(cfg.peers[0].allowed_ips[0], prefix("10.0.0.0/24"));
    EXPECT_EQ(cfg.peers[0].allowed_ips[1], prefix("fd00::/64"));
    ASSERT_EQ(cfg.warnings.size(), 2u);
    EXPECT_EQ(cfg.warnings[0],
              "t.conf:3: AllowedIPs '10.0.0.1/24' has host bits set; using 10.0.0.0/24");
    EXPECT_EQ(cfg.warnings[1],
              "t.conf:3: AllowedIPs 'fd00::1/64' has host bits set; using fd00::/64");

    // Empty AllowedIPs is accepted (no routes), as wg does.
    cfg = parse(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nAllowedIPs =\n");
    EXPECT_TRUE(cfg.peers[0].allowed_ips.empty());

    for (const char* bad : {"10.0.0.0/33", "10.0.0", "any", "10.0.0.0/8;", "::/129"})
        expect_error(peer(kPub1, bad), 3, "invalid prefix");
    expect_error(peer(kPub1, "10.0.0.0/8, ,10.1.0.0/16"), 3, "empty item in AllowedIPs");
}

TEST(WgQuick, SamePrefixInTwoPeersIsAnError) {
    std::string text = peer(kPub1, "10.0.0.0/24, 10.0.1.0/24") + "\n" +
                       "[Peer]\nPublicKey = " + kPub2 + "\nAllowedIPs = 10.9.0.0/16\n" +
                       "AllowedIPs = 10.0.1.7/24\n";
    expect_error(text, 8, "AllowedIPs 10.0.1.0/24 of the peer at line 5");
    expect_error(text, 8, "already routed to the peer at line 1");
    // Nested prefixes of different lengths are fine: longest-prefix match decides.
    auto cfg = parse(peer(kPub1, "10.0.0.0/8, 0.0.0.0/0") + peer(kPub2, "10.0.0.0/9, 10.0.0.1"));
    EXPECT_EQ(cfg.peers.size(), 2u);
    // Same address bits in different families are different prefixes.
    cfg = parse(peer(kPub1, "0.0.0.0/0") + peer(kPub2, "::/0"));
    EXPECT_EQ(cfg.peers.size(), 2u);
}

TEST(WgQuick, Endpoints) {
    auto ep = [](const char* v) {
        return *parse(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nEndpoint = " + v + "\n")
                    .peers[0]
                    .endpoint;
    };
    for (const char* good : {"1.2.3.4:51820", "[fd00::1]:65535", "vpn.example.com:1", "localhost:9",
                             "my_host-1.lan.:80", "[::ffff:1.2.3.4]:5"})
        EXPECT_EQ(ep(good), good);
    for (const char* bad :
         {"1.2.3.4", "1.2.3.4:0", "1.2.3.4:65536", "fd00::1:80", "[fd00::1]", "[1.2.3.4]:80",
          "[host]:80", "host:port", ":80", "bad host:80", "a..b:80", "10.1.2:80", "300.1.1.1:80",
          "-", "host:80:80", "ex$mple.com:80"})
        expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nEndpoint = " + bad + "\n", 3,
                     "invalid Endpoint");
    expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 +
                     "\nEndpoint = " + std::string(64, 'a') + ".com:80\n",
                 3, "invalid Endpoint");
}

TEST(WgQuick, Connector) {
    auto conn = [](const char* v) {
        return *parse(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nConnector = " + v + "\n")
                    .peers[0]
                    .connector;
    };
    EXPECT_EQ(conn("static"), "static");
    EXPECT_EQ(conn("exec:/bin/x"), "exec:/bin/x");
    EXPECT_EQ(conn("exec: lookup --peer a"), "exec: lookup --peer a");
    for (const char* bad : {"", "exec:", "exec:   ", "exec", "dns", "Static", "staticx"})
        expect_error(std::string("[Peer]\nPublicKey = ") + kPub1 + "\nConnector = " + bad + "\n", 3,
                     "invalid Connector");
    expect_error("[Interface]\nConnector = static\n", 2, "unknown key 'Connector' in [Interface]");
}

std::string peer_with(const char* pub, const std::string& lines) {
    return std::string("[Peer]\nPublicKey = ") + pub + "\n" + lines;
}

TEST(WgQuick, GroupAndLazyDefaults) {
    auto cfg = parse(peer(kPub1, "10.0.0.1"));
    ASSERT_EQ(cfg.peers.size(), 1u);
    EXPECT_TRUE(cfg.peers[0].groups.empty());
    EXPECT_TRUE(cfg.peers[0].lazy);
}

TEST(WgQuick, Groups) {
    using Names = std::vector<std::string>;
    auto groups = [](const std::string& lines) {
        return parse(peer_with(kPub1, lines)).peers[0].groups;
    };
    EXPECT_EQ(groups("Group = ha-routers\n"), Names{"ha-routers"});
    // Sorted, repeats collapsed, lists accumulate over lines; key is case-insensitive,
    // names are not.
    EXPECT_EQ(groups("Group = site_b, site.a ,  HA-1\ngroup = site.a,Site.a\nGROUP = zz,site_b\n"),
              (Names{"HA-1", "Site.a", "site.a", "site_b", "zz"}));
    std::string longest(64, 'g');
    EXPECT_EQ(groups("Group = " + longest + "\n"), Names{longest});

    // Groups belong to their own peer only.
    auto cfg = parse(peer_with(kPub1, "Group = a, b\n") + peer_with(kPub2, "Group = b\n"));
    EXPECT_EQ(cfg.peers[0].groups, (Names{"a", "b"}));
    EXPECT_EQ(cfg.peers[1].groups, Names{"b"});

    struct Bad {
        std::string value;
        std::string name;
    };
    for (const Bad& bad : std::vector<Bad>{{"", ""},
                                           {"a,,b", ""},
                                           {"a,", ""},
                                           {", a", ""},
                                           {"ha routers", "ha routers"},
                                           {"a, b/c", "b/c"},
                                           {"grp:1", "grp:1"},
                                           {"caf\xc3\xa9", "caf\xc3\xa9"},
                                           {"a;b", "a;b"},
                                           {std::string(65, 'g'), std::string(65, 'g')}}) {
        std::string text =
            peer_with(kPub1, "AllowedIPs = 10.0.0.1\nGroup = ok\nGroup = " + bad.value + "\n");
        expect_error(text, 5, "invalid group name '" + bad.name + "' in Group");
        expect_error(text, 5, "1..64 characters");
    }
    expect_error("[Interface]\nGroup = a\n", 2, "unknown key 'Group' in [Interface]");
}

TEST(WgQuick, Lazy) {
    auto lazy = [](const std::string& v) {
        return parse(peer_with(kPub1, "Lazy = " + v + "\n")).peers[0].lazy;
    };
    for (const char* on : {"on", "ON", "true", "True", "yes", "YES", "1"})
        EXPECT_TRUE(lazy(on)) << on;
    for (const char* off : {"off", "Off", "false", "FALSE", "no", "No", "0"})
        EXPECT_FALSE(lazy(off)) << off;

    // Only the peer that says so is never-lazy.
    auto cfg = parse(peer_with(kPub1, "lazy = off\n") + peer(kPub2, "10.0.0.2"));
    EXPECT_FALSE(cfg.peers[0].lazy);
    EXPECT_TRUE(cfg.peers[1].lazy);

    for (const char* bad : {"", "2", "never", "onn", "o n", "enabled", "-1"}) {
        std::string text = peer_with(kPub1, std::string("Lazy = ") + bad + "\n");
        expect_error(text, 3, std::string("invalid Lazy '") + bad + "'");
        expect_error(text, 3,
                     std::string("expected one of on, off, true, false, yes, no, 1 or 0, got \"") +
                         bad + "\"");
    }
    expect_error(peer_with(kPub1, "Lazy = off\nEndpoint = a:1\nlazy = off\n"), 5,
                 "duplicate key 'lazy' (first set at line 3)");
    // Per-peer: a second peer may set it again.
    cfg = parse(peer_with(kPub1, "Lazy = off\n") + peer_with(kPub2, "Lazy = no\n"));
    EXPECT_FALSE(cfg.peers[1].lazy);
    expect_error("[Interface]\nLazy = off\n", 2, "unknown key 'Lazy' in [Interface]");
}

TEST(WgQuick, InactivityThresholdPerPeer) {
    auto threshold = [](const std::string& v) {
        return parse(peer_with(kPub1, "InactivityThreshold = " + v + "\n"))
            .peers[0]
            .inactivity_threshold;
    };
    using std::chrono::milliseconds;
    EXPECT_EQ(threshold("90s"), milliseconds(90'000));
    EXPECT_EQ(threshold("1h30m"), milliseconds(5'400'000));
    EXPECT_EQ(threshold("2"), milliseconds(120'000));  // a bare number is minutes
    EXPECT_EQ(threshold("10s"), milliseconds(10'000));
    EXPECT_FALSE(parse(peer(kPub1, "10.0.0.1")).peers[0].inactivity_threshold);
    expect_error(peer_with(kPub1, "InactivityThreshold = 9s\n"), 3,
                 "InactivityThreshold: inactivity threshold \"9s\" is below the minimum of 10s");
    expect_error(peer_with(kPub1, "InactivityThreshold = soon\n"), 3,
                 "InactivityThreshold: invalid duration \"soon\"");
    expect_error("[Interface]\nInactivityThreshold = 1m\n", 2,
                 "unknown key 'InactivityThreshold' in [Interface]");
}

// The control socket parses text with a source name of its own; messages and warnings
// carry that name instead of a file.
TEST(WgQuick, SourceNameInMessages) {
    auto cfg = parse_wg_quick("[Interface]\nDNS = 1.1.1.1\n", "control");
    ASSERT_EQ(cfg.warnings.size(), 1u);
    EXPECT_EQ(cfg.warnings[0], "control:2: ignoring wg-quick-only key 'DNS'");
    try {
        parse_wg_quick(peer_with(kPub1, "Group = bad name\n"), "control");
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind("control:3: invalid group name 'bad name'", 0), 0u)
            << e.what();
    }
}

TEST(WgQuick, HundredThousandPeers) {
    constexpr int kPeers = 100000;
    std::string text = std::string("[Interface]\nPrivateKey = ") + kPriv + "\nListenPort = 51820\n";
    text.reserve(static_cast<size_t>(kPeers) * 110);
    for (int i = 0; i < kPeers; ++i) {
        WgKey k;
        k.bytes[0] = static_cast<uint8_t>(i);
        k.bytes[1] = static_cast<uint8_t>(i >> 8);
        k.bytes[2] = static_cast<uint8_t>(i >> 16);
        k.bytes[31] = 0x40;
        text += "[Peer]\nPublicKey = " + k.base64() + "\nAllowedIPs = 10." +
                std::to_string(i >> 16) + "." + std::to_string((i >> 8) & 255) + "." +
                std::to_string(i & 255) + "/32\n";
    }
    auto cfg = parse(text);
    ASSERT_EQ(cfg.peers.size(), static_cast<size_t>(kPeers));
    EXPECT_EQ(cfg.peers.back().line, 4 + 3 * (kPeers - 1));
    EXPECT_EQ(cfg.peers.back().allowed_ips[0], prefix("10.1.134.159/32"));

    // A duplicate at the very end is still found.
    std::string dup = text + "[Peer]\nPublicKey = " + kPub1 + "\nAllowedIPs = 10.0.0.5\n";
    expect_error(dup, 4 + 3 * kPeers + 2, "already routed to the peer at line 19");
}

TEST(WgQuick, LoadFile) {
    std::string path = "/tmp/nb_wg_quick_test_" + std::to_string(getpid()) + ".conf";
    {
        std::ofstream f(path);
        f << "[Interface]\nListenPort = 9\nBad line\n";
    }
    try {
        load_wg_quick(path);
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()).rfind(path + ":3: malformed line", 0), 0u) << e.what();
    }
    {
        std::ofstream f(path);
        f << "[Interface]\nListenPort = 9\n";
    }
    EXPECT_EQ(*load_wg_quick(path).iface.listen_port, 9);
    std::remove(path.c_str());

    try {
        load_wg_quick(path);
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), path + ": cannot read: No such file or directory");
    }
    try {
        load_wg_quick("/tmp");
        ADD_FAILURE() << "no error";
    } catch (const ConfigError& e) {
        EXPECT_EQ(std::string(e.what()), "/tmp: not a regular file (a directory)");
    }
}

}  // namespace
}  // namespace nb
