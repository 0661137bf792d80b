// The domain's reports in the status reply's types.
#include "agent/control/status_map.hpp"

#include <gtest/gtest.h>

#include "tests/support/programs_ahead.hpp"

namespace nb {
namespace {

using test::filter;
using test::tcx_prog;

TEST(StatusMap, ManagerCountsAndPeers) {
    LazyStatus l;
    l.lazy = false;
    l.inactivity_threshold_ms = 900000;
    l.idle = 1;
    l.connecting = 2;
    l.connected = 3;
    l.lost_reports = 4;
    l.lost_recovered = 5;
    l.wakes_queued = 6;
    l.wakes_deferred = 7;
    l.wakes_shed = 8;
    l.peers.emplace_back().public_key = "k";
    AgentStatus s = agent_status("wg7", l);
    EXPECT_EQ(s.interface, "wg7");
    EXPECT_FALSE(s.lazy);
    EXPECT_EQ(s.inactivity_threshold_ms, 900000);
    EXPECT_EQ(s.idle + s.connecting * 10 + s.connected * 100, 321u);
    EXPECT_EQ(s.lost_reports, 4u);
    EXPECT_EQ(s.lost_recovered, 5u);
    EXPECT_EQ(s.wakes_queued, 6u);
    EXPECT_EQ(s.wakes_deferred, 7u);
    EXPECT_EQ(s.wakes_shed, 8u);
    ASSERT_EQ(s.peers.size(), 1u);
    EXPECT_EQ(s.peers[0].public_key, "k");
    // The engine's fields are the engine's to fill.
    EXPECT_EQ(s.trigger, std::nullopt);
}

TEST(StatusMap, OrderCheckWireForm) {
    TcOrder o;
    o.checked = true;
    o.ahead = {tcx_prog(TcDirection::Egress, 12, "foo"),
               filter(TcDirection::Ingress, 45, "bar", 1, 7)};
    DatapathOrderStatus s = order_status(o);
    EXPECT_TRUE(s.checked);
    EXPECT_EQ(s.error, "");
    ASSERT_EQ(s.ahead.size(), 2u);
    EXPECT_EQ(s.ahead[0].direction, "egress");
    EXPECT_EQ(s.ahead[0].hook, AttachMode::Tcx);
    EXPECT_EQ(s.ahead[0].id, 12u);
    EXPECT_EQ(s.ahead[0].name, "foo");
    EXPECT_EQ(s.ahead[1].direction, "ingress");
    EXPECT_EQ(s.ahead[1].hook, AttachMode::Clsact);
    EXPECT_EQ(s.ahead[1].priority, 1u);
    EXPECT_EQ(s.ahead[1].handle, 7u);

    o = {};
    o.error = "querying tcx ingress: Operation not permitted";
    s = order_status(o);
    EXPECT_FALSE(s.checked);
    EXPECT_EQ(s.error, o.error);
    EXPECT_TRUE(s.ahead.empty());
}

}  // namespace
}  // namespace nb
