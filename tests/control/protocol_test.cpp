#include <gtest/gtest.h>

#include <set>

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
    s.idle = 1;
    s.connecting = 2;
    s.connected = 3;
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
    PeerStatus b;
    b.public_key = "odd \"key\" \\ with\ttabs\nand\x01control\x7f and ünïcode";
    b.state = PeerState::Connecting;
    b.last_wake_ms = 3;
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
    EXPECT_EQ(keys, (std::set<std::string>{"interface", "wg_backend", "trigger", "attach_mode",
                                           "lazy", "counts", "peers"}));
    EXPECT_EQ(j["counts"], (nlohmann::json{{"idle", 1}, {"connecting", 2}, {"connected", 3}}));
    std::set<std::string> peer_keys;
    for (const auto& [k, v] : j["peers"][0].items()) peer_keys.insert(k);
    EXPECT_EQ(peer_keys,
              (std::set<std::string>{"public_key", "allowed_ips", "state", "endpoint", "wakes",
                                     "held", "dropped", "last_wake_ms", "last_activity_ms"}));
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
}

TEST(Protocol, FastReplyTextMatchesNlohmannByteForByte) {
    AgentStatus s = sample_status();
    s.peers[0].last_wake_ms = 0.1 + 0.2;
    s.peers[1].last_wake_ms = 12345678.5;
    s.peers[2].last_wake_ms = 1e-7;
    s.peers[2].last_activity_ms = -5;
    const std::string expected = nlohmann::json{{"ok", true}, {"status", to_json(s)}}.dump();
    EXPECT_EQ(status_reply_text(s), expected);
    s.peers.clear();
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

TEST(Protocol, SocketPath) {
    EXPECT_EQ(socket_path("/run/nbagent", "wg0"), "/run/nbagent/wg0.sock");
    EXPECT_EQ(socket_path("/tmp/x", "nb-1"), "/tmp/x/nb-1.sock");
}

}  // namespace
}  // namespace nb
