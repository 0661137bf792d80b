// The trace's wire form of each typed event.
#include "agent/control/trace_json.hpp"

#include <netinet/in.h>

#include <gtest/gtest.h>

namespace nb {
namespace {

WgKey key1() {
    WgKey k;
    k.bytes.fill(1);
    return k;
}

// Without the stamp, which is the time of the call.
nlohmann::json unstamped(const TraceEvent& ev) {
    nlohmann::json j = trace_json(ev);
    EXPECT_TRUE(j.contains("ts"));
    j.erase("ts");
    return j;
}

TEST(TraceJson, TriggerByPacketNamesItsProtocolAndPorts) {
    PacketSummary s;
    s.family = AF_INET;
    s.src = *IpAddr::parse("10.0.0.1");
    s.dst = *IpAddr::parse("10.0.0.2");
    s.proto = IPPROTO_UDP;
    s.sport = 5000;
    s.dport = 53;
    const std::string peer = key1().base64();
    EXPECT_EQ(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::Packet, s}),
              (nlohmann::json{{"event", "trigger"},
                              {"peer", peer},
                              {"src", "10.0.0.1"},
                              {"dst", "10.0.0.2"},
                              {"proto", "udp"},
                              {"sport", 5000},
                              {"dport", 53}}));
    s.proto = 47;  // GRE: a number, and no ports
    s.sport = s.dport = 0;
    EXPECT_EQ(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::Packet, s})["proto"], 47);
    EXPECT_FALSE(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::Packet, s}).contains("sport"));
    // Bytes that are not IP: the peer alone.
    EXPECT_EQ(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::Packet, std::nullopt}),
              (nlohmann::json{{"event", "trigger"}, {"peer", peer}}));
}

TEST(TraceJson, TriggerCauses) {
    EXPECT_EQ(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::Handshake, {}})["proto"],
              "wireguard-handshake");
    EXPECT_EQ(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::LostReport, {}})["lost_report"],
              true);
    EXPECT_EQ(unstamped(TriggerEvent{key1(), TriggerEvent::Cause::Queued, {}})["queued"], true);
}

TEST(TraceJson, Drops) {
    const std::string peer = key1().base64();
    EXPECT_EQ(unstamped(DropEvent{key1(), DropEvent::Reason::Backoff, "no answer", 1500, 0}),
              (nlohmann::json{{"event", "drop"},
                              {"peer", peer},
                              {"reason", "backoff"},
                              {"retry_in_ms", 1500},
                              {"error", "no answer"}}));
    EXPECT_EQ(unstamped(DropEvent{key1(), DropEvent::Reason::WireGuard, "lost", 0, 0}),
              (nlohmann::json{
                  {"event", "drop"}, {"peer", peer}, {"reason", "wireguard"}, {"error", "lost"}}));
    EXPECT_EQ(
        unstamped(DropEvent{key1(), DropEvent::Reason::QueueFull, "", 0, 4096}),
        (nlohmann::json{
            {"event", "drop"}, {"peer", peer}, {"reason", "wake queue full"}, {"queued", 4096}}));
}

TEST(TraceJson, Transitions) {
    const std::string peer = key1().base64();
    EXPECT_EQ(unstamped(TransitionEvent{key1(), PeerState::Connecting, PeerState::Connected,
                                        "packet", 12.5, ""}),
              (nlohmann::json{{"event", "transition"},
                              {"peer", peer},
                              {"from", "Connecting"},
                              {"to", "Connected"},
                              {"reason", "packet"},
                              {"latency_ms", 12.5}}));
    EXPECT_EQ(unstamped(TransitionEvent{key1(), PeerState::Connecting, PeerState::Idle, "failed",
                                        std::nullopt, "timeout"}),
              (nlohmann::json{{"event", "transition"},
                              {"peer", peer},
                              {"from", "Connecting"},
                              {"to", "Idle"},
                              {"reason", "failed"},
                              {"error", "timeout"}}));
}

TEST(TraceJson, OverrunAndMode) {
    EXPECT_EQ(unstamped(OverrunEvent{7, 3}),
              (nlohmann::json{{"event", "overrun"}, {"lost", 7}, {"recovered", 3}}));
    EXPECT_EQ(unstamped(ModeEvent{false}), (nlohmann::json{{"event", "mode"}, {"lazy", false}}));
}

}  // namespace
}  // namespace nb
