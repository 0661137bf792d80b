// The bundle anonymizer (agent/debug/anonymizer.hpp): what it replaces, with what, and
// what it leaves alone.
#include "agent/debug/anonymizer.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/debug/pseudonyms.hpp"
#include "agent/debug/text_scan.hpp"
#include "base/net/ip.hpp"
#include "tests/support/fuzz_seed.hpp"

namespace nb {
namespace {

constexpr uint64_t kSeed = 17;
const std::string kKey = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
const std::string kKey2 = "TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=";
// kKey in the UAPI's hex.
const std::string kKeyHex = "c53201039adba14be71f886da1d8dbe9eebded08cb111b75340078999aa9f038";

// Texts the fuzz target starts from (scripts/fuzz.sh seeds).
std::string seeded(std::string text) {
    test::fuzz_seed("anonymizer_text", text);
    return text;
}

bool in_test_nets(const IpAddr& a) {
    const uint32_t net = a.v4_value() & 0xffffff00;
    return a.family == AF_INET && (net == 0xc6336400 || net == 0xcb007100);
}

bool in_doc_v6(const IpAddr& a) {
    return a.family == AF_INET6 && a.bytes[0] == 0x20 && a.bytes[1] == 0x01 && a.bytes[2] == 0x0d &&
           a.bytes[3] == 0xb8;
}

TEST(Anonymizer, Ipv4GoesToTheTestNets) {
    Anonymizer an(kSeed);
    const std::string a = an.address("10.0.0.1"), b = an.address("10.0.0.2");
    auto pa = IpAddr::parse(a), pb = IpAddr::parse(b);
    ASSERT_TRUE(pa && pb) << a << " " << b;
    EXPECT_TRUE(in_test_nets(*pa)) << a;
    EXPECT_TRUE(in_test_nets(*pb)) << b;
    EXPECT_NE(a, b);
    EXPECT_EQ(an.address("10.0.0.1"), a);
    EXPECT_EQ(an.mapped(), 2u);
}

TEST(Pseudonyms, Ipv4CountsThroughTheRangesWithoutRepeating) {
    const anon::Pseudonyms p(kSeed);
    std::set<uint32_t> seen;
    const uint64_t test_nets = 508, benchmark = 512 * 254;
    for (uint64_t n = 0; n < test_nets + benchmark + 1000; ++n) {
        const IpAddr a = p.ipv4(n);
        ASSERT_TRUE(seen.insert(a.v4_value()).second) << n << " " << a.str();
        ASSERT_TRUE(anon::is_ipv4_pseudonym(a)) << a.str();
        ASSERT_FALSE(anon::identifies_nothing(a)) << a.str();
        const uint32_t host = a.v4_value() & 0xff;
        ASSERT_TRUE(host != 0 && host != 255) << a.str();
        if (n < test_nets) {
            ASSERT_TRUE(in_test_nets(a)) << n << " " << a.str();
        } else if (n < test_nets + benchmark) {
            ASSERT_EQ(a.v4_value() & 0xfffe0000, 0xc6120000u) << n << " " << a.str();  // /15
        } else {
            ASSERT_EQ(a.v4_value() & 0xf8000000, 0xf0000000u) << n << " " << a.str();  // /5
        }
    }
}

TEST(Pseudonyms, CountUpFromAShiftedStart) {
    const anon::Pseudonyms p(kSeed);
    // Consecutive within a /24, wherever the shift put the start.
    int steps = 0;
    for (uint64_t n = 0; n + 1 < 508; ++n)
        steps += p.ipv4(n + 1).v4_value() == p.ipv4(n).v4_value() + 1;
    EXPECT_GE(steps, 504);
    EXPECT_NE(anon::Pseudonyms(1).ipv4(0), anon::Pseudonyms(2).ipv4(0));
}

TEST(Anonymizer, Ipv6GoesTo2001Db8) {
    Anonymizer an(kSeed);
    const std::string a = an.address("fd00:1234::1"), b = an.address("fe80::1c2:3ff:fe4d:5e6f");
    auto pa = IpAddr::parse(a), pb = IpAddr::parse(b);
    ASSERT_TRUE(pa && pb) << a << " " << b;
    EXPECT_TRUE(in_doc_v6(*pa)) << a;
    EXPECT_TRUE(in_doc_v6(*pb)) << b;
    EXPECT_NE(a, b);
    EXPECT_EQ(an.address("fd00:1234:0::1"), a);  // the same address spelled otherwise
    // An IPv4-mapped address stays IPv6.
    auto pc = IpAddr::parse(an.address("::ffff:10.0.0.1"));
    ASSERT_TRUE(pc);
    EXPECT_TRUE(in_doc_v6(*pc));
}

TEST(Anonymizer, KeepsPrefixLengthsPortsAndBrackets) {
    Anonymizer an(kSeed);
    const std::string v4 = an.address("10.0.0.1");
    const std::string v6 = an.address("fd00::1");
    EXPECT_EQ(an.text("10.0.0.1/32"), v4 + "/32");
    EXPECT_EQ(an.text("10.0.0.1:51820"), v4 + ":51820");
    EXPECT_EQ(an.text("[fd00::1]:51820"), "[" + v6 + "]:51820");
    EXPECT_EQ(an.text("fd00::1/128"), v6 + "/128");
    EXPECT_EQ(an.text("fd00::1%wg0"), v6 + "%wg0");
    EXPECT_EQ(an.text("fd00::1:51820"), v6 + ":51820");  // unbracketed, as some logs write
    EXPECT_EQ(an.text("to 10.0.0.1."), "to " + v4 + ".");
    EXPECT_EQ(an.text("at fd00::1: gone"), "at " + v6 + ": gone");
    const std::string net = an.text("10.1.2.0/24");
    ASSERT_EQ(net.size() > 3 ? net.substr(net.size() - 3) : "", "/24") << net;
    auto p = IpPrefix::parse(net);
    ASSERT_TRUE(p) << net;
    EXPECT_TRUE(in_test_nets(p->addr)) << net;
    EXPECT_EQ(an.text("1.2.3.4.nip.io"), an.address("1.2.3.4") + ".nip.io");
}

TEST(Anonymizer, KeysBecomeNumberedValidKeys) {
    Anonymizer an(kSeed);
    const std::string k1 = an.key(kKey), k2 = an.key(kKey2);
    EXPECT_NE(k1, k2);
    for (const std::string& k : {k1, k2}) {
        ASSERT_EQ(k.size(), 44u) << k;
        EXPECT_EQ(k.substr(0, 3), "key") << k;
        EXPECT_TRUE(anon::decode_base64_key(k)) << k;
    }
    EXPECT_EQ(an.key(kKey), k1);
    EXPECT_EQ(an.text("peer " + kKey + " up"), "peer " + k1 + " up");
    // Numbers count up.
    EXPECT_EQ(std::stoul(k2.substr(3, 8)), (std::stoul(k1.substr(3, 8)) + 1) % 100000000);
}

TEST(Anonymizer, HexKeysGetTheSamePseudonymInHex) {
    Anonymizer an(kSeed);
    const std::string b64 = an.key(kKey);
    const std::string hex = an.key(kKeyHex);
    ASSERT_EQ(hex.size(), 64u);
    auto bytes = anon::decode_base64_key(b64);
    ASSERT_TRUE(bytes);
    std::string want;
    for (uint8_t b : *bytes) {
        const char* digits = "0123456789abcdef";
        want += digits[b >> 4];
        want += digits[b & 15];
    }
    EXPECT_EQ(hex, want);
    EXPECT_EQ(an.text("public_key=" + kKeyHex + "\n"), "public_key=" + want + "\n");
    EXPECT_EQ(an.mapped(), 1u);
}

TEST(Anonymizer, RegisteredNamesBecomePlaceholders) {
    Anonymizer an(kSeed);
    EXPECT_TRUE(an.add_name("laptop.example.com", "host"));
    EXPECT_TRUE(an.add_name("db", "host"));
    EXPECT_TRUE(an.add_name("/usr/local/bin/connect --via relay", "command"));
    EXPECT_EQ(an.text("host laptop.example.com: up"), "host host-0001: up");
    EXPECT_EQ(an.text("\"connector\":\"/usr/local/bin/connect --via relay\""),
              "\"connector\":\"command-0001\"");
    // Whole words only, for names that begin or end with one.
    EXPECT_EQ(an.text("db dbus mydb db.local db-2"),
              "host-0002 dbus mydb host-0002.local host-0002-2");
    EXPECT_EQ(an.mapped(), 3u);
}

TEST(Anonymizer, LongestNameWins) {
    Anonymizer an(kSeed);
    an.add_name("node", "host");
    an.add_name("node.corp", "host");
    EXPECT_EQ(an.text("node.corp and node"), "host-0002 and host-0001");
}

TEST(Anonymizer, NamesAreFoundInTheirJsonSpellingToo) {
    Anonymizer an(kSeed);
    an.add_name("sh -c \"wg-up\tnow\"", "command");
    const nlohmann::json j = {{"connect", "sh -c \"wg-up\tnow\""}};
    const std::string out = an.text(seeded(j.dump()));
    EXPECT_EQ(out, R"({"connect":"command-0001"})");
    EXPECT_EQ(an.text("sh -c \"wg-up\tnow\""), "command-0001");
}

TEST(Anonymizer, NameArguments) {
    Anonymizer an(kSeed);
    EXPECT_FALSE(an.add_name("a", "host"));
    EXPECT_FALSE(an.add_name("", "host"));
    EXPECT_THROW(an.add_name("laptop", ""), std::invalid_argument);
    EXPECT_THROW(an.add_name("laptop", "1host"), std::invalid_argument);
    EXPECT_THROW(an.add_name("laptop", "host name"), std::invalid_argument);
    EXPECT_TRUE(an.add_name("laptop", "Host_2"));
    EXPECT_TRUE(an.add_name("laptop", "other"));  // already there: keeps its first one
    EXPECT_EQ(an.text("laptop"), "Host_2-0001");
    EXPECT_EQ(an.mapped(), 1u);
}

TEST(Anonymizer, ConsistentAcrossTextsOfOneBundle) {
    Anonymizer an(kSeed);
    const std::string a = an.text("endpoint 192.0.2.7:51820 key " + kKey);
    const std::string b = an.text("{\"endpoint\":\"192.0.2.7:51820\",\"key\":\"" + kKey + "\"}");
    const std::string addr = an.address("192.0.2.7"), key = an.key(kKey);
    EXPECT_EQ(a, "endpoint " + addr + ":51820 key " + key);
    EXPECT_EQ(b, "{\"endpoint\":\"" + addr + ":51820\",\"key\":\"" + key + "\"}");
}

TEST(Anonymizer, DifferentSecretsGiveDifferentPseudonyms) {
    const std::string in = "10.0.0.1 10.0.0.2 fd00::1 " + kKey;
    const std::string a = Anonymizer(1).text(in), b = Anonymizer(2).text(in);
    EXPECT_EQ(Anonymizer(1).text(in), a);  // a seed decides everything
    std::istringstream sa(a), sb(b);
    std::string wa, wb;
    while (sa >> wa && sb >> wb) EXPECT_NE(wa, wb);
    // Drawn from std::random_device: two bundles differ (a 1 in 508 chance they would not
    // for the first IPv4 address; all three at once is 1 in 10^13).
    Anonymizer x, y;
    EXPECT_NE(x.text(in), y.text(in));
}

TEST(Anonymizer, LeavesAloneWhatIdentifiesNothing) {
    Anonymizer an(kSeed);
    const std::vector<std::string> same = {
        "0.0.0.0/0",
        "127.0.0.1:8080",
        "127.255.0.9",
        "::/0",
        "[::1]:53",
        "netmask 255.255.255.0 broadcast 255.255.255.255",
        "nbagent 0.1.0-g0412dbb-dirty (1.2.3)",
        "12:34:56 and 12:34:56.789 and 2026-12-04T19:22:47.123Z",
        "in 2001 we had 2001:db8 and 1:2:3:4:5:6:7 groups",
        "deadbeef cafe:babe 0x1f",
        "v1.2.3.4 1.2.3.4.5 01.2.3.4 1.2.3.256 1.2.3.4x",
        "ratio 1.5 then 3.14159",
        "std::string a::b::c",
        "aa:bb:cc:dd:ee:ff",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "short key abc= and 43 chars xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8D=",
        "",
        "\"\\\\\"",
    };
    for (const std::string& s : same) EXPECT_EQ(an.text(seeded(s)), s);
    EXPECT_EQ(an.mapped(), 0u);
}

TEST(Anonymizer, WgQuickConfigAndUapiDump) {
    Anonymizer an(kSeed);
    const std::string conf =
        "[Interface]\nPrivateKey = " + kKey2 +
        "\nListenPort = 51820\nAddress = 10.100.0.1/24, fd10:100::1/64\n\n[Peer]\n"
        "PublicKey = " +
        kKey +
        "\nAllowedIPs = 10.100.0.2/32, 0.0.0.0/0, ::/0\n"
        "Endpoint = vpn.example.net:51820\n";
    const std::string want = "[Interface]\nPrivateKey = " + an.key(kKey2) +
                             "\nListenPort = 51820\nAddress = " + an.address("10.100.0.1") +
                             "/24, " + an.address("fd10:100::1") +
                             "/64\n\n[Peer]\nPublicKey = " + an.key(kKey) +
                             "\nAllowedIPs = " + an.address("10.100.0.2") +
                             "/32, 0.0.0.0/0, ::/0\n"
                             "Endpoint = vpn.example.net:51820\n";
    EXPECT_EQ(an.text(seeded(conf)), want);
    const std::string uapi = "public_key=" + kKeyHex + "\nendpoint=[fd00::7]:51820\n";
    EXPECT_EQ(an.text(seeded(uapi)), "public_key=" + an.key(kKeyHex) + "\nendpoint=[" +
                                         an.address("fd00::7") + "]:51820\n");
    EXPECT_EQ(an.mapped(), 6u);
}

TEST(Anonymizer, KeptIpv6InIpv4SpellingStaysKept) {
    Anonymizer an(kSeed);
    for (const std::string s : {"::0.0.0.1", "::0.0.0.0", "0.1.2.3"}) EXPECT_EQ(an.text(s), s);
    EXPECT_EQ(an.mapped(), 0u);
}

TEST(Anonymizer, JsonEscapesSeparateTokens) {
    Anonymizer an(kSeed);
    const std::string addr = an.address("10.0.0.1"), key = an.key(kKey);
    EXPECT_EQ(an.text(R"("peer\t10.0.0.1\n)" + kKey + R"(\u0009x")"),
              R"("peer\t)" + addr + R"(\n)" + key + R"(\u0009x")");
    // An escaped backslash is no escape: "\\n10.0.0.1" is a backslash and "n10.0.0.1".
    EXPECT_EQ(an.text(R"(\\n10.0.0.1)"), R"(\\n10.0.0.1)");
    // A backslash before what no JSON escape has is only a separator (a Windows path).
    EXPECT_EQ(an.text(R"(C:\10.0.0.1)"), R"(C:\)" + addr);
    // Nothing starts at the letter of an escape: "\fd00::1" is a form feed and "d00::1".
    EXPECT_EQ(an.text(R"(\fd00::1)"), R"(\f)" + an.address("d00::1"));
}

TEST(Anonymizer, JsonStaysValidAndKeepsNoOriginal) {
    nlohmann::json peers = nlohmann::json::array();
    std::vector<std::string> originals = {"10.200.0.0"};
    std::vector<uint16_t> ports;
    for (int i = 1; i <= 300; ++i) {
        // Distinct keys: kKey with one character changed (still 32 bytes of base64).
        std::string key = kKey;
        key[i % 40] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
        if (!anon::decode_base64_key(key) || key == kKey) continue;
        const std::string ip = "10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256);
        const std::string v6 = "fd00:1::" + std::to_string(i);
        const std::string ep = "192.0.2." + std::to_string(i % 250 + 1);
        peers.push_back({{"public_key", key},
                         {"allowed_ips", {ip + "/32", v6 + "/128", "10.200.0.0/16"}},
                         {"endpoint", ep + ":" + std::to_string(51820 + i)},
                         {"endpoint6", "[" + v6 + "]:51820"},
                         {"last_activity_ms", 1733333333333 + i},
                         {"state", "Idle"}});
        originals.insert(originals.end(), {key, ip, v6, ep});
        ports.push_back(static_cast<uint16_t>(51820 + i));
    }
    const nlohmann::json doc = {{"status", {{"interface", "wg0"}, {"peers", peers}}}};
    Anonymizer an(kSeed);
    const std::string out = an.text(doc.dump(2));
    seeded(nlohmann::json({{"peers", {peers[0], peers[1]}}}).dump());
    const nlohmann::json back = nlohmann::json::parse(out);  // throws if broken
    for (const std::string& o : originals) EXPECT_EQ(out.find(o), std::string::npos) << o;
    const auto& got = back["status"]["peers"];
    ASSERT_EQ(got.size(), peers.size());
    for (size_t i = 0; i < got.size(); ++i) {
        const auto& p = got[i];
        EXPECT_TRUE(anon::decode_base64_key(p["public_key"].get<std::string>()));
        EXPECT_EQ(p["last_activity_ms"], peers[i]["last_activity_ms"]);
        const auto ips = p["allowed_ips"];
        auto v4 = IpPrefix::parse(ips[0].get<std::string>());
        auto v6 = IpPrefix::parse(ips[1].get<std::string>());
        ASSERT_TRUE(v4 && v6) << ips;
        EXPECT_EQ(v4->len, 32);
        EXPECT_EQ(v6->len, 128);
        EXPECT_TRUE(in_doc_v6(v6->addr));
        EXPECT_EQ(ips[2], got[0]["allowed_ips"][2]);  // one network, one pseudonym
        auto ep = SockAddr::parse_numeric(p["endpoint"].get<std::string>());
        ASSERT_TRUE(ep) << p["endpoint"];
        EXPECT_EQ(ep->port(), ports[i]);
        EXPECT_TRUE(SockAddr::parse_numeric(p["endpoint6"].get<std::string>())) << p["endpoint6"];
    }
    // 300 peers' keys and addresses, one shared network and 250 endpoints at most.
    EXPECT_GT(an.mapped(), 4 * 250u);
}

TEST(TextScan, TokensNeedSeparators) {
    using anon::address_at;
    EXPECT_TRUE(address_at("x 10.0.0.1", 2));
    EXPECT_FALSE(address_at("x10.0.0.1", 1));  // glued to a word
    EXPECT_FALSE(address_at(".10.0.0.1", 1));  // part of a longer dotted run
    EXPECT_FALSE(address_at("10.0.0.1a", 0));  // glued to a word at the end
    EXPECT_TRUE(address_at("_10.0.0.1 ", 1));
    EXPECT_TRUE(address_at("id:10.0.0.1", 3));  // "key:value" in logs
    auto a = address_at("[fd00::1]:51820", 1);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->len, 7u);
    EXPECT_FALSE(anon::key_at("x" + kKey, 1));
    EXPECT_FALSE(anon::key_at(kKey + "A", 0));
    EXPECT_TRUE(anon::key_at("'" + kKey + "'", 1));
    EXPECT_TRUE(anon::name_fits_at("a db", 2, 2));
    EXPECT_FALSE(anon::name_fits_at("a dbus", 2, 2));
}

}  // namespace
}  // namespace nb
