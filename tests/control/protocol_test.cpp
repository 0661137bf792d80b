#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

#include "agent/control/protocol.hpp"

namespace nb {
namespace {

AgentStatus sample_status() {
    AgentStatus s;
    s.interface = "wg0";
    s.wg_backend = "kernel";
    s.trigger = "bpf";
    s.attach_mode = "tcx";
    s.lazy = false;
    s.inactivity_threshold_ms = 900'000;
    s.idle = 1;
    s.connecting = 2;
    s.connected = 3;
    s.lost_reports = 17;
    s.lost_recovered = 5;
    s.datapath_order.checked = true;
    s.datapath_order.ahead = {{"egress", "tcx", 123, "foreign_pass", 0, 0},
                              {"ingress", "clsact", 0, "u32 \"odd\"", 1, 0x10001}};
    s.wireguard = "lost";
    s.wireguard_since = "2024-05-01T12:00:00.000Z";
    s.wireguard_error = "device wg0 is gone";
    PeerStatus a;
    a.public_key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    a.allowed_ips = {"10.0.0.2/32", "fd00::2/128"};
    a.state = PeerState::Connected;
    a.endpoint = "192.0.2.1:51820";
    a.wakes = 7;
    a.held = 12;
    a.dropped = 1;
    a.last_wake_ms = 1.9;
    a.last_activity_ms = 1714572123123;
    a.lazy = false;
    a.groups = {"db", "ops team"};
    PeerStatus b;
    b.public_key = "odd \"key\" \\ with\ttabs\nand\x01control\x7f and ünïcode";
    b.state = PeerState::Connecting;
    b.last_wake_ms = 3;
    b.groups = {"quote\" back\\slash", "ctl\x02\n", "grüppe"};
    b.failures = 3;
    b.retry_in_ms = 3500;
    b.last_error = "wake hook: exit 1: \"no route\"\n\tat line 2\x1b[31m \\ ü";
    s.peers = {a, b, PeerStatus{}};
    return s;
}

TEST(Protocol, PeerStateNamesRoundTrip) {
    for (auto st : {PeerState::Idle, PeerState::Connecting, PeerState::Connected}) {
        EXPECT_EQ(peer_state_from_string(to_string(st)), st);
    }
    EXPECT_STREQ(to_string(PeerState::Connecting), "Connecting");
    EXPECT_EQ(peer_state_from_string("idle"), std::nullopt);
    EXPECT_EQ(peer_state_from_string(""), std::nullopt);
}

TEST(Protocol, StatusJsonHasDocumentedKeys) {
    const auto j = to_json(sample_status());
    std::set<std::string> keys;
    for (const auto& [k, v] : j.items()) keys.insert(k);
    EXPECT_EQ(keys,
              (std::set<std::string>{"interface", "wg_backend", "trigger", "trigger_reason",
                                     "attach_mode", "lazy", "inactivity_threshold_ms", "counts",
                                     "lost_reports", "lost_recovered", "ring_reports", "gso_split",
                                     "gso_unsplit", "datapath_order", "wireguard", "wakes_queued",
                                     "wakes_deferred", "wakes_shed", "peers"}));
    EXPECT_EQ(j["datapath_order"]["checked"], true);
    EXPECT_EQ(j["datapath_order"]["error"], "");
    EXPECT_EQ(j["datapath_order"]["ahead"][0], (nlohmann::json{{"direction", "egress"},
                                                               {"hook", "tcx"},
                                                               {"id", 123},
                                                               {"name", "foreign_pass"},
                                                               {"priority", 0},
                                                               {"handle", 0}}));
    EXPECT_EQ(j["wireguard"], (nlohmann::json{{"state", "lost"},
                                              {"since", "2024-05-01T12:00:00.000Z"},
                                              {"error", "device wg0 is gone"}}));
    EXPECT_EQ(j["inactivity_threshold_ms"], 900'000);
    EXPECT_EQ(j["counts"], (nlohmann::json{{"idle", 1}, {"connecting", 2}, {"connected", 3}}));
    std::set<std::string> peer_keys;
    for (const auto& [k, v] : j["peers"][0].items()) peer_keys.insert(k);
    EXPECT_EQ(peer_keys,
              (std::set<std::string>{"public_key", "allowed_ips", "state", "endpoint", "wakes",
                                     "held", "dropped", "last_wake_ms", "last_activity_ms", "lazy",
                                     "groups", "failures", "retry_in_ms", "last_error"}));
    EXPECT_EQ(j["peers"][0]["lazy"], false);
    EXPECT_EQ(j["peers"][0]["groups"], (nlohmann::json{"db", "ops team"}));
    EXPECT_EQ(j["peers"][1]["failures"], 3);
    EXPECT_EQ(j["peers"][1]["retry_in_ms"], 3500);
    EXPECT_EQ(j["peers"][2]["lazy"], true);
    EXPECT_EQ(j["peers"][2]["groups"], nlohmann::json::array());
    EXPECT_EQ(j["peers"][2]["last_error"], "");
    EXPECT_EQ(j["peers"][0]["state"], "Connected");
    EXPECT_EQ(j["peers"][2]["last_wake_ms"], -1.0);
}

TEST(Protocol, RoundTripThroughText) {
    const AgentStatus s = sample_status();
    const auto parsed = agent_status_from_json(nlohmann::json::parse(to_json(s).dump()));
    EXPECT_EQ(to_json(parsed), to_json(s));
    ASSERT_EQ(parsed.peers.size(), 3u);
    EXPECT_EQ(parsed.peers[1].public_key, s.peers[1].public_key);
    EXPECT_EQ(parsed.peers[0].allowed_ips, s.peers[0].allowed_ips);
    EXPECT_EQ(parsed.peers[0].last_activity_ms, s.peers[0].last_activity_ms);
    EXPECT_DOUBLE_EQ(parsed.peers[0].last_wake_ms, 1.9);
    EXPECT_FALSE(parsed.lazy);
    EXPECT_EQ(parsed.inactivity_threshold_ms, 900'000);
    EXPECT_EQ(parsed.lost_reports, 17u);
    EXPECT_EQ(parsed.lost_recovered, 5u);
    EXPECT_TRUE(parsed.datapath_order.checked);
    ASSERT_EQ(parsed.datapath_order.ahead.size(), 2u);
    EXPECT_EQ(parsed.datapath_order.ahead[0].id, 123u);
    EXPECT_EQ(parsed.datapath_order.ahead[1].name, "u32 \"odd\"");
    EXPECT_EQ(parsed.datapath_order.ahead[1].handle, 0x10001u);
    EXPECT_EQ(parsed.wireguard, "lost");
    EXPECT_EQ(parsed.wireguard_since, "2024-05-01T12:00:00.000Z");
    EXPECT_EQ(parsed.wireguard_error, "device wg0 is gone");
    EXPECT_FALSE(parsed.peers[0].lazy);
    EXPECT_TRUE(parsed.peers[1].lazy);
    EXPECT_EQ(parsed.peers[0].groups, s.peers[0].groups);
    EXPECT_EQ(parsed.peers[1].groups, s.peers[1].groups);
    EXPECT_EQ(parsed.peers[1].failures, 3u);
    EXPECT_EQ(parsed.peers[1].retry_in_ms, 3500);
    EXPECT_EQ(parsed.peers[1].last_error, s.peers[1].last_error);
}

TEST(Protocol, FastReplyTextParsesBack) {
    const AgentStatus s = sample_status();
    const auto reply = nlohmann::json::parse(status_reply_text(s));
    const auto parsed = agent_status_from_json(reply.at("status"));
    EXPECT_EQ(to_json(parsed), to_json(s));
    EXPECT_EQ(parsed.peers[1].last_error, s.peers[1].last_error);
    EXPECT_EQ(parsed.peers[1].groups, s.peers[1].groups);
}

// An agent from before the never-lazy, group, back-off and threshold fields: its reply
// still parses, and the new fields keep their defaults.
TEST(Protocol, OlderReplyWithoutNewFieldsIsAccepted) {
    auto j = to_json(sample_status());
    j.erase("inactivity_threshold_ms");
    j.erase("lost_reports");
    j.erase("lost_recovered");
    j.erase("datapath_order");
    j.erase("wireguard");
    for (auto& p : j["peers"]) {
        for (const char* k : {"lazy", "groups", "failures", "retry_in_ms", "last_error"})
            p.erase(k);
    }
    const AgentStatus parsed = agent_status_from_json(j);
    EXPECT_EQ(parsed.inactivity_threshold_ms, 0);
    EXPECT_EQ(parsed.lost_reports, 0u);
    EXPECT_FALSE(parsed.datapath_order.checked);
    EXPECT_TRUE(parsed.datapath_order.ahead.empty());
    EXPECT_EQ(parsed.wireguard, "");  // not said: the summary leaves the line out
    ASSERT_EQ(parsed.peers.size(), 3u);
    for (const auto& p : parsed.peers) {
        EXPECT_TRUE(p.lazy);
        EXPECT_TRUE(p.groups.empty());
        EXPECT_EQ(p.failures, 0u);
        EXPECT_EQ(p.retry_in_ms, 0);
        EXPECT_EQ(p.last_error, "");
    }
    EXPECT_EQ(parsed.peers[0].public_key, "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=");
}

// The writer checks eight bytes at a time whether a string needs escaping: every
// character that does, at every position of a word and of the tail, must still be caught.
TEST(Protocol, EscapesFoundAtEveryPositionOfAWord) {
    AgentStatus s = sample_status();
    s.peers.resize(1);
    for (char special : {'"', '\\', '\n', '\x01', '\x1f', '\0'}) {
        for (size_t at = 0; at < 40; ++at) {
            std::string text(40, 'a');
            text[at] = special;
            text[(at + 17) % 40] = '\x7f';  // not escaped by nlohmann, must not confuse
            s.peers[0].public_key = text;
            s.peers[0].last_error = "ünïcode " + text;
            const std::string expected =
                nlohmann::json{{"ok", true}, {"status", to_json(s)}}.dump();
            ASSERT_EQ(status_reply_text(s), expected) << int(special) << " at " << at;
        }
    }
}

TEST(Protocol, FastReplyTextMatchesNlohmannByteForByte) {
    AgentStatus s = sample_status();
    s.peers[0].last_wake_ms = 0.1 + 0.2;
    s.peers[1].last_wake_ms = 12345678.5;
    s.peers[2].last_wake_ms = 1e-7;
    s.peers[2].last_activity_ms = -5;
    s.peers[2].failures = UINT32_MAX;
    s.peers[2].retry_in_ms = INT64_MAX;
    s.peers[2].last_error = std::string("nul\0inside", 10);
    s.peers[2].groups = {""};
    s.inactivity_threshold_ms = 1;
    s.datapath_order.ahead[1].id = UINT32_MAX;
    s.datapath_order.error = "tab\there";
    const std::string expected = nlohmann::json{{"ok", true}, {"status", to_json(s)}}.dump();
    EXPECT_EQ(status_reply_text(s), expected);
    s.datapath_order = {};  // unchecked, nothing ahead
    EXPECT_EQ(status_reply_text(s), (nlohmann::json{{"ok", true}, {"status", to_json(s)}}.dump()));
    s.peers.clear();
    EXPECT_EQ(status_reply_text(s), (nlohmann::json{{"ok", true}, {"status", to_json(s)}}.dump()));
}

// Bytes from outside (a connector's stderr) that are not UTF-8 must still give a reply
// that strict JSON parsers (Python's json, nlohmann) accept: they become U+FFFD.
TEST(Protocol, InvalidUtf8BecomesReplacementCharacter) {
    AgentStatus s = sample_status();
    s.peers.resize(1);
    const char* bad[] = {"\xff\xfe",
                         "a\xc0\xaf\x62",  // \x62: 'b' after an overlong '/'
                         "\xed\xa0\x80",  "\xf4\x90\x80\x80",        "tail \xf0\x9f\x98",
                         "\x80",          "ok \xe2\x82\xac \xe2\x28"};
    for (const char* b : bad) {
        s.peers[0].last_error = b;
        s.peers[0].public_key = std::string(b) + "0123456789abcdef";  // the fast path's words
        const std::string text = status_reply_text(s);
        nlohmann::json j;
        ASSERT_NO_THROW(j = nlohmann::json::parse(text)) << b;
        const std::string got = j["status"]["peers"][0]["last_error"];
        EXPECT_NE(got.find("\xef\xbf\xbd"), std::string::npos) << b;
        EXPECT_EQ(j["status"]["peers"][0]["public_key"].get<std::string>().find("\xff"),
                  std::string::npos);
    }
    s.peers[0].public_key = "k";
    s.peers[0].last_error = "valid: \xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xbc";
    EXPECT_EQ(status_reply_text(s), (nlohmann::json{{"ok", true}, {"status", to_json(s)}}.dump()));
}

void expect_rejected(nlohmann::json j, const std::string& field) {
    try {
        agent_status_from_json(j);
        ADD_FAILURE() << "accepted invalid status, expected an error about " << field;
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("\"" + field + "\""), std::string::npos)
            << "message: " << e.what();
    }
}

TEST(Protocol, ValidationNamesTheBadField) {
    const auto good = to_json(sample_status());
    auto j = good;
    j.erase("interface");
    expect_rejected(j, "interface");
    j = good;
    j["lazy"] = "yes";
    expect_rejected(j, "lazy");
    j = good;
    j["counts"]["idle"] = "1";
    expect_rejected(j, "counts.idle");
    j = good;
    j["counts"]["connected"] = -1;
    expect_rejected(j, "counts.connected");
    j = good;
    j["peers"][1]["state"] = "Asleep";
    expect_rejected(j, "peers[1].state");
    j = good;
    j["peers"][0]["allowed_ips"][1] = 5;
    expect_rejected(j, "peers[0].allowed_ips[1]");
    j = good;
    j["peers"][2].erase("wakes");
    expect_rejected(j, "peers[2].wakes");
    j = good;
    j["peers"][0]["last_wake_ms"] = "fast";
    expect_rejected(j, "peers[0].last_wake_ms");
    j = good;
    j["peers"] = nlohmann::json::object();
    expect_rejected(j, "peers");
    j = good;
    j["peers"][0] = 3;
    expect_rejected(j, "peers[0]");
    EXPECT_THROW(agent_status_from_json(nlohmann::json::array()), std::runtime_error);
}

TEST(Protocol, ValidationOfNewFields) {
    const auto good = to_json(sample_status());
    auto j = good;
    j["inactivity_threshold_ms"] = "15m";
    expect_rejected(j, "inactivity_threshold_ms");
    j = good;
    j["inactivity_threshold_ms"] = -1;
    expect_rejected(j, "inactivity_threshold_ms");
    j = good;
    j["peers"][0]["lazy"] = 1;
    expect_rejected(j, "peers[0].lazy");
    j = good;
    j["peers"][1]["groups"] = "db";
    expect_rejected(j, "peers[1].groups");
    j = good;
    j["peers"][1]["groups"][2] = nullptr;
    expect_rejected(j, "peers[1].groups[2]");
    j = good;
    j["peers"][1]["failures"] = -3;
    expect_rejected(j, "peers[1].failures");
    j = good;
    j["peers"][1]["failures"] = uint64_t{1} << 32;
    expect_rejected(j, "peers[1].failures");
    j = good;
    j["peers"][2]["retry_in_ms"] = 1.5;
    expect_rejected(j, "peers[2].retry_in_ms");
    j = good;
    j["peers"][2]["last_error"] = nullptr;
    expect_rejected(j, "peers[2].last_error");
    j = good;
    j["datapath_order"] = true;
    expect_rejected(j, "datapath_order");
    j = good;
    j["datapath_order"].erase("checked");
    expect_rejected(j, "datapath_order.checked");
    j = good;
    j["datapath_order"]["ahead"][1]["id"] = -1;
    expect_rejected(j, "datapath_order.ahead[1].id");
    j = good;
    j["datapath_order"]["ahead"][0]["priority"] = uint64_t{1} << 32;
    expect_rejected(j, "datapath_order.ahead[0].priority");
    j = good;
    j["datapath_order"]["ahead"][0] = "tcx";
    expect_rejected(j, "datapath_order.ahead[0]");
}

TEST(Protocol, SocketPath) {
    EXPECT_EQ(socket_path("/run/nbagent", "wg0"), "/run/nbagent/wg0.sock");
    EXPECT_EQ(socket_path("/tmp/x", "nb-1"), "/tmp/x/nb-1.sock");
}

}  // namespace
}  // namespace nb
