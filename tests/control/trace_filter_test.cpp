// Trace filters on the wire form of events: the agent and the CLI select alike.
#include <gtest/gtest.h>

#include "agent/control/request.hpp"
#include "agent/control/trace_filter.hpp"

namespace nb {
namespace {

const nlohmann::json kState = {{"event", "transition"}, {"peer", "AAAA1"}, {"from", "Idle"}};
const nlohmann::json kFailed = {
    {"event", "transition"}, {"peer", "BBBB2"}, {"error", "no handshake"}};
const nlohmann::json kDrop = {{"event", "drop"}, {"peer", "AAAA1"}};
const nlohmann::json kOverrun = {{"event", "overrun"}, {"lost", 3}};

TEST(TraceFilter, EachFieldSelectsAndAllMustHold) {
    TraceFilter all;
    for (const auto* e : {&kState, &kFailed, &kDrop, &kOverrun})
        EXPECT_TRUE(trace_matches(all, "", *e));
    TraceFilter peer;
    peer.key_prefix = "AAAA";
    EXPECT_TRUE(trace_matches(peer, "", kState));
    EXPECT_TRUE(trace_matches(peer, "", kDrop));
    EXPECT_FALSE(trace_matches(peer, "", kFailed));
    EXPECT_FALSE(trace_matches(peer, "", kOverrun));  // no peer
    TraceFilter failures;
    failures.failures = true;
    EXPECT_FALSE(trace_matches(failures, "", kState));
    EXPECT_TRUE(trace_matches(failures, "", kFailed));
    EXPECT_TRUE(trace_matches(failures, "", kDrop));
    failures.key_prefix = "AAAA";
    EXPECT_FALSE(trace_matches(failures, "", kFailed));
    TraceFilter events;
    events.events = {"drop", "overrun"};
    EXPECT_FALSE(trace_matches(events, "", kState));
    EXPECT_TRUE(trace_matches(events, "", kDrop));
    EXPECT_TRUE(trace_matches(events, "", kOverrun));
    TraceFilter ip;
    ip.ip = IpAddr::parse("10.0.0.1");
    EXPECT_TRUE(trace_matches(ip, "BBBB2", kFailed));
    EXPECT_FALSE(trace_matches(ip, "BBBB2", kState));
    EXPECT_FALSE(trace_matches(ip, "BBBB2", kOverrun));
}

TEST(TraceFilter, RequestsRoundTripAndNameTheBadField) {
    TraceRequest t;
    t.filter.key_prefix = "xTIB";
    t.filter.ip = IpAddr::parse("10.0.0.1");
    t.filter.events = {"drop"};
    t.filter.failures = true;
    t.last = 50;
    t.follow = true;
    auto back = std::get<TraceRequest>(request_from_json(to_json(ControlRequest{t})));
    EXPECT_EQ(back.filter.key_prefix, "xTIB");
    EXPECT_EQ(back.filter.ip, IpAddr::parse("10.0.0.1"));
    EXPECT_EQ(back.filter.events, std::vector<std::string>{"drop"});
    EXPECT_TRUE(back.filter.failures);
    EXPECT_EQ(back.last, 50u);
    EXPECT_TRUE(back.follow);
    // Kept events alone by default; live alone without them.
    EXPECT_FALSE(std::get<TraceRequest>(request_from_json({{"cmd", "trace"}, {"last", 5}})).follow);
    EXPECT_TRUE(std::get<TraceRequest>(request_from_json({{"cmd", "trace"}})).follow);
    auto error = [](const nlohmann::json& j) {
        try {
            request_from_json(j);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("(accepted)");
    };
    EXPECT_EQ(
        error({{"cmd", "trace"}, {"events", {"nap"}}}),
        "\"events\": unknown event \"nap\" (expected trigger, drop, transition, overrun or mode)");
    EXPECT_EQ(error({{"cmd", "trace"}, {"last", 0}}), "\"last\" must be a positive whole number");
    EXPECT_EQ(error({{"cmd", "trace"}, {"ip", "x"}}),
              "\"ip\" must be an IPv4 or IPv6 address, not \"x\"");
}

}  // namespace
}  // namespace nb
