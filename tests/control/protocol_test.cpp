#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "agent/control/protocol.hpp"

namespace nb {
namespace {

AgentStatus sample_status() {
    AgentStatus s;
    s.interface = "wg0";
    s.wg_backend = WgBackend::Kernel;
    s.trigger = TriggerEngine::Bpf;
    s.attach_mode = AttachMode::Tcx;
    s.lazy = false;
    s.inactivity_threshold_ms = 900'000;
    s.idle = 1;
    s.connecting = 2;
    s.connected = 3;
    s.lost_reports = 17;
    s.lost_recovered = 5;
    s.datapath_order.checked = true;
    s.datapath_order.ahead = {{"egress", AttachMode::Tcx, 123, "foreign_pass", 0, 0},
                              {"ingress", AttachMode::Clsact, 0, "u32 \"odd\"", 1, 0x10001}};
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

// What a client reads: the reply parsed, not its bytes.
nlohmann::json reply_json(const AgentStatus& s) {
    return nlohmann::json::parse(status_reply_text(s));
}

nlohmann::json status_json(const AgentStatus& s) {
    return reply_json(s).at("status");
}

TEST(Protocol, PeerStateNamesRoundTrip) {
    for (auto st : {PeerState::Idle, PeerState::Connecting, PeerState::Connected}) {
        EXPECT_EQ(peer_state_from_string(to_string(st)), st);
    }
    EXPECT_STREQ(to_string(PeerState::Idle), "Idle");
    EXPECT_STREQ(to_string(PeerState::Connecting), "Connecting");
    EXPECT_STREQ(to_string(PeerState::Connected), "Connected");
    EXPECT_EQ(peer_state_from_string("idle"), std::nullopt);
    EXPECT_EQ(peer_state_from_string(""), std::nullopt);
}

// Clients parse the reply: its keys and values are what the serializer before this one
// (commit 0bf9c64) wrote for the same status, whatever order the keys now come in.
TEST(Protocol, ReplyHasTheKeysAndValuesClientsRead) {
    AgentStatus s = sample_status();
    s.peers[1].public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    s.peers[1].groups = {"db"};
    s.peers[1].last_error = "connector exited 1: \"no route\"";
    s.peers.resize(2);
    s.peers[0].rx_bytes = 123456789012;
    s.peers[0].tx_bytes = 42;
    s.peers[0].last_handshake_ms = 1714572120000;
    s.peers[0].wg_read_ms = 1714572123000;
    const auto expected = nlohmann::json::parse(R"({"ok": true, "status": {
        "attach_mode": "tcx",
        "counts": {"connected": 3, "connecting": 2, "idle": 1},
        "datapath_order": {"ahead": [
            {"direction": "egress", "handle": 0, "hook": "tcx", "id": 123,
             "name": "foreign_pass", "priority": 0},
            {"direction": "ingress", "handle": 65537, "hook": "clsact", "id": 0,
             "name": "u32 \"odd\"", "priority": 1}], "checked": true, "error": ""},
        "gso_split": 0, "gso_unsplit": 0, "inactivity_threshold_ms": 900000,
        "interface": "wg0", "lazy": false, "lost_recovered": 5, "lost_reports": 17,
        "version": "", "started": "", "uptime_s": 0, "public_key": "", "listen_port": 0,
        "ring_reports": 0, "trigger": "bpf", "trigger_reason": "", "wakes_deferred": 0,
        "wakes_queued": 0, "wakes_shed": 0, "wg_backend": "kernel",
        "wireguard": {"error": "device wg0 is gone", "since": "2024-05-01T12:00:00.000Z",
                      "state": "lost"},
        "peers": [
            {"allowed_ips": ["10.0.0.2/32", "fd00::2/128"], "dropped": 1,
             "endpoint": "192.0.2.1:51820", "failures": 0, "groups": ["db", "ops team"],
             "held": 12, "last_activity_ms": 1714572123123, "last_error": "",
             "last_wake_ms": 1.9, "lazy": false,
             "public_key": "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", "retry_in_ms": 0,
             "state": "Connected", "wakes": 7, "wake_endpoint": "", "state_since_ms": 0,
             "rx_bytes": 123456789012, "tx_bytes": 42, "last_handshake_ms": 1714572120000,
             "wg_read_ms": 1714572123000},
            {"allowed_ips": [], "dropped": 0, "endpoint": "", "failures": 3, "groups": ["db"],
             "held": 0, "last_activity_ms": 0,
             "last_error": "connector exited 1: \"no route\"", "last_wake_ms": 3.0,
             "lazy": true, "public_key": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
             "retry_in_ms": 3500, "state": "Connecting", "wakes": 0, "wake_endpoint": "",
             "state_since_ms": 0, "rx_bytes": 0, "tx_bytes": 0, "last_handshake_ms": 0,
             "wg_read_ms": 0}]}})");
    EXPECT_EQ(reply_json(s), expected);
    // Both integer kinds and the float stay what they were: a client may check the type.
    const auto peer = status_json(s)["peers"][0];
    EXPECT_TRUE(peer["wakes"].is_number_unsigned());
    EXPECT_TRUE(peer["last_activity_ms"].is_number_integer());
    EXPECT_TRUE(peer["last_wake_ms"].is_number_float());
    // `status -d --json` forwards the object after this prefix without parsing it.
    EXPECT_EQ(status_reply_text(s).rfind(R"({"ok":true,"status":{)", 0), 0u);
    s.peers.clear();
    EXPECT_EQ(status_json(s)["peers"], nlohmann::json::array());
    EXPECT_EQ(status_json(s).size(), expected["status"].size());
    // Without detail there is no "peers" at all: an empty list would read as no peers.
    const auto summary = nlohmann::json::parse(status_summary_text(s));
    EXPECT_FALSE(summary["status"].contains("peers"));
    EXPECT_EQ(summary["status"].size(), expected["status"].size() - 1);
    EXPECT_FALSE(agent_status_from_json(summary["status"]).has_peers);
    EXPECT_TRUE(agent_status_from_json(status_json(s)).has_peers);
}

TEST(Protocol, PeerObjectIsTheReplysPeer) {
    const AgentStatus s = sample_status();
    const auto peers = status_json(s)["peers"];
    ASSERT_EQ(peers.size(), s.peers.size());
    for (size_t i = 0; i < s.peers.size(); ++i) EXPECT_EQ(to_json(s.peers[i]), peers[i]) << i;
}

TEST(Protocol, RoundTripThroughText) {
    AgentStatus s = sample_status();
    s.ring_reports = 101;
    s.gso_split = 102;
    s.gso_unsplit = 103;
    s.wakes_queued = 104;
    s.wakes_deferred = 105;
    s.wakes_shed = 106;
    s.peers[2].rx_bytes = 107;
    s.peers[2].tx_bytes = 108;
    s.peers[2].last_handshake_ms = 109;
    s.peers[2].wg_read_ms = 110;
    const AgentStatus parsed = agent_status_from_json(status_json(s));
    EXPECT_EQ(parsed.peers.at(2).rx_bytes, 107u);
    EXPECT_EQ(parsed.peers.at(2).wg_read_ms, 110);
    EXPECT_EQ(status_json(parsed), status_json(s));
    ASSERT_EQ(parsed.peers.size(), 3u);
    EXPECT_EQ(parsed.peers[1].public_key, s.peers[1].public_key);
    EXPECT_EQ(parsed.peers[0].allowed_ips, s.peers[0].allowed_ips);
    EXPECT_EQ(parsed.peers[0].last_activity_ms, s.peers[0].last_activity_ms);
    EXPECT_DOUBLE_EQ(parsed.peers[0].last_wake_ms, 1.9);
    EXPECT_FALSE(parsed.lazy);
    EXPECT_EQ(parsed.inactivity_threshold_ms, 900'000);
    EXPECT_EQ(parsed.lost_reports, 17u);
    EXPECT_EQ(parsed.lost_recovered, 5u);
    EXPECT_EQ(parsed.ring_reports, 101u);
    EXPECT_EQ(parsed.gso_split, 102u);
    EXPECT_EQ(parsed.gso_unsplit, 103u);
    EXPECT_EQ(parsed.wakes_queued, 104u);
    EXPECT_EQ(parsed.wakes_deferred, 105u);
    EXPECT_EQ(parsed.wakes_shed, 106u);
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

// An agent from before the never-lazy, group, back-off and threshold fields: its reply
// still parses, and the new fields keep their defaults.
TEST(Protocol, OlderReplyWithoutNewFieldsIsAccepted) {
    auto j = status_json(sample_status());
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

// Plain ASCII is copied without nlohmann's escaping: a string with one character that
// needs escaping, anywhere in it, must still take nlohmann's path and read back intact.
TEST(Protocol, EveryEscapedCharacterReadsBack) {
    AgentStatus s = sample_status();
    s.peers.resize(1);
    for (char special : {'"', '\\', '\n', '\t', '\x01', '\x1f', '\0', '\x7f'}) {
        for (size_t at = 0; at < 20; ++at) {
            std::string text(20, 'a');
            text[at] = special;
            s.peers[0].public_key = text;
            s.peers[0].endpoint = "ünïcode " + text;
            s.peers[0].allowed_ips = {text, "10.0.0.1/32"};
            s.datapath_order.error = text;
            const auto j = status_json(s);
            ASSERT_EQ(j["peers"][0]["public_key"], text) << int(special) << " at " << at;
            ASSERT_EQ(j["peers"][0]["endpoint"], "ünïcode " + text);
            ASSERT_EQ(j["peers"][0]["allowed_ips"][0], text);
            ASSERT_EQ(j["datapath_order"]["error"], text);
        }
    }
}

TEST(Protocol, EdgeValuesReadBack) {
    AgentStatus s = sample_status();
    s.peers[0].last_wake_ms = 0.1 + 0.2;
    s.peers[1].last_wake_ms = 12345678.5;
    s.peers[2].last_wake_ms = 1e-7;
    s.peers[2].last_activity_ms = -5;
    s.peers[2].failures = UINT32_MAX;
    s.peers[2].retry_in_ms = INT64_MAX;
    s.peers[2].wakes = UINT64_MAX;
    s.peers[2].last_error = std::string("nul\0inside", 10);
    s.peers[2].groups = {""};
    s.inactivity_threshold_ms = 1;
    s.datapath_order.ahead[1].id = UINT32_MAX;
    s.datapath_order.error = "tab\there";
    const auto j = status_json(s);
    EXPECT_EQ(j["peers"][0]["last_wake_ms"].get<double>(), 0.1 + 0.2);  // exactly
    EXPECT_EQ(j["peers"][1]["last_wake_ms"].get<double>(), 12345678.5);
    EXPECT_EQ(j["peers"][2]["last_wake_ms"].get<double>(), 1e-7);
    EXPECT_EQ(j["peers"][2]["last_activity_ms"], -5);
    EXPECT_EQ(j["peers"][2]["failures"], UINT32_MAX);
    EXPECT_EQ(j["peers"][2]["retry_in_ms"], INT64_MAX);
    EXPECT_EQ(j["peers"][2]["wakes"], UINT64_MAX);
    EXPECT_EQ(j["peers"][2]["last_error"], std::string("nul\0inside", 10));
    EXPECT_EQ(j["peers"][2]["groups"], nlohmann::json::array({""}));
    EXPECT_EQ(j["inactivity_threshold_ms"], 1);
    EXPECT_EQ(j["datapath_order"]["ahead"][1]["id"], UINT32_MAX);
    EXPECT_EQ(j["datapath_order"]["error"], "tab\there");
    // What nlohmann's dump() writes for a non-finite double (null); read back as "never".
    s.peers[0].last_wake_ms = std::numeric_limits<double>::infinity();
    EXPECT_TRUE(status_json(s)["peers"][0]["last_wake_ms"].is_null());
    EXPECT_EQ(agent_status_from_json(status_json(s)).peers[0].last_wake_ms, -1);
    s.datapath_order = {};  // unchecked, nothing ahead
    EXPECT_EQ(
        status_json(s)["datapath_order"],
        (nlohmann::json{{"checked", false}, {"error", ""}, {"ahead", nlohmann::json::array()}}));
}

// Bytes from outside (a connector's stderr) that are not UTF-8, in any string field, must
// still give a reply that strict parsers (Python's json, nlohmann) accept: each invalid
// sequence becomes U+FFFD; valid UTF-8 is kept as it is.
TEST(Protocol, InvalidUtf8InAnyFieldBecomesReplacementCharacter) {
    const std::string kFffd = "\xef\xbf\xbd";
    const char* bad[] = {"\xff\xfe",
                         "a\xc0\xaf\x62",  // \x62: 'b' after an overlong '/'
                         "\xed\xa0\x80",  "\xf4\x90\x80\x80",        "tail \xf0\x9f\x98",
                         "\x80",          "ok \xe2\x82\xac \xe2\x28"};
    for (const char* b : bad) {
        AgentStatus s = sample_status();
        for (std::string* f :
             {&s.interface, &s.trigger_reason, &s.wireguard, &s.wireguard_since, &s.wireguard_error,
              &s.datapath_order.error, &s.datapath_order.ahead[0].name, &s.peers[0].public_key,
              &s.peers[0].endpoint, &s.peers[0].last_error})
            *f += b;
        s.peers[0].groups.push_back(std::string("grp ") + b);
        s.peers[0].allowed_ips.push_back(b);
        const std::string text = status_reply_text(s);
        EXPECT_EQ(text.find("\xff"), std::string::npos) << b;
        nlohmann::json j;
        ASSERT_NO_THROW(j = nlohmann::json::parse(text)) << b;  // nlohmann checks UTF-8
        const auto& st = j["status"];
        const auto& peer = st["peers"][0];
        for (const auto* v :
             {&st["interface"], &st["wireguard"]["error"], &st["datapath_order"]["error"],
              &st["datapath_order"]["ahead"][0]["name"], &peer["public_key"], &peer["endpoint"],
              &peer["last_error"], &peer["groups"].back(), &peer["allowed_ips"].back()})
            EXPECT_NE(v->get<std::string>().find(kFffd), std::string::npos) << b << " in " << *v;
    }
    AgentStatus s = sample_status();
    s.peers[0].last_error = "bad \xff\xfe end";
    s.peers[0].groups = {"grp\xff\xfe"};
    const auto peer = status_json(s)["peers"][0];
    EXPECT_EQ(peer["last_error"], "bad " + kFffd + kFffd + " end");
    EXPECT_EQ(peer["groups"], nlohmann::json::array({"grp" + kFffd + kFffd}));
    s.peers[0].last_error = "valid: \xe2\x82\xac \xf0\x9f\x98\x80 \xc3\xbc";
    EXPECT_EQ(status_json(s)["peers"][0]["last_error"], s.peers[0].last_error);
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
    const auto good = status_json(sample_status());
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

// The modes travel by their tables' names and come back as the same enums; "" is none.
TEST(Protocol, ModesRoundTripByName) {
    for (const auto& backend : kWgBackendNames) {
        for (const auto& trigger : kTriggerEngineNames) {
            for (const auto& attach : kAttachModeNames) {
                AgentStatus s = sample_status();
                s.wg_backend = backend.value;
                s.trigger = trigger.value;
                s.attach_mode = attach.value;
                s.datapath_order.ahead[0].hook = attach.value;
                const auto j = status_json(s);
                EXPECT_EQ(j["wg_backend"], backend.name);
                EXPECT_EQ(j["trigger"], trigger.name);
                EXPECT_EQ(j["attach_mode"], attach.name);
                EXPECT_EQ(j["datapath_order"]["ahead"][0]["hook"], attach.name);
                const AgentStatus back = agent_status_from_json(j);
                EXPECT_EQ(back.wg_backend, backend.value);
                EXPECT_EQ(back.trigger, trigger.value);
                EXPECT_EQ(back.attach_mode, attach.value);
                EXPECT_EQ(back.datapath_order.ahead[0].hook, attach.value);
            }
        }
    }
    // Eager mode: no trigger engine and no tc programs.
    AgentStatus s = sample_status();
    s.trigger.reset();
    s.attach_mode.reset();
    const auto j = status_json(s);
    EXPECT_EQ(j["trigger"], "");
    EXPECT_EQ(j["attach_mode"], "");
    const AgentStatus back = agent_status_from_json(j);
    EXPECT_EQ(back.trigger, std::nullopt);
    EXPECT_EQ(back.attach_mode, std::nullopt);
}

// A name a client does not know is an error naming the field and the names it takes,
// not a string passed on or a silent default.
TEST(Protocol, UnknownModeNamesAreRefused) {
    const auto good = status_json(sample_status());
    const std::pair<const char*, const char*> cases[] = {
        {"wg_backend", "expected one of kernel or userspace, got \"wireguard-rs\""},
        {"trigger", "expected one of bpf or udp, got \"wireguard-rs\""},
        {"attach_mode", "expected one of auto, tcx or clsact, got \"wireguard-rs\""},
    };
    for (const auto& [field, want] : cases) {
        auto j = good;
        j[field] = "wireguard-rs";
        expect_rejected(j, field);
        try {
            agent_status_from_json(j);
        } catch (const std::runtime_error& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        }
    }
    auto j = good;
    j["wg_backend"] = "";  // a backend always runs
    expect_rejected(j, "wg_backend");
    j = good;
    j["trigger"] = "BPF";
    expect_rejected(j, "trigger");
    j = good;
    j["wg_backend"] = 1;
    expect_rejected(j, "wg_backend");
    j = good;
    j["datapath_order"]["ahead"][1]["hook"] = "xdp";
    expect_rejected(j, "datapath_order.ahead[1].hook");
}

TEST(Protocol, ValidationOfNewFields) {
    const auto good = status_json(sample_status());
    auto j = good;
    j["inactivity_threshold_ms"] = "15m";
    expect_rejected(j, "inactivity_threshold_ms");
    j = good;
    j["inactivity_threshold_ms"] = -1;
    expect_rejected(j, "inactivity_threshold_ms");
    for (const char* counter : {"lost_reports", "lost_recovered", "ring_reports", "gso_split",
                                "gso_unsplit", "wakes_queued", "wakes_deferred", "wakes_shed"}) {
        for (const auto& bad : {nlohmann::json("7"), nlohmann::json(-1)}) {
            j = good;
            j[counter] = bad;
            expect_rejected(j, counter);
        }
    }
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
