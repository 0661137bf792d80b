// The order check's two readings: the log's (describe) and the status wire form.
#include <gtest/gtest.h>

#include "agent/activity/order_watch.hpp"
#include "loader/tc_order.hpp"

namespace nb {
namespace {

ProgramAhead tcx_prog(TcDirection dir, uint32_t id, const char* name) {
    ProgramAhead p;
    p.direction = dir;
    p.tcx = true;
    p.prog_id = id;
    p.name = name;
    return p;
}

ProgramAhead filter(TcDirection dir, uint32_t id, const char* name, uint16_t pref, uint32_t h) {
    ProgramAhead p;
    p.direction = dir;
    p.prog_id = id;
    p.name = name;
    p.priority = pref;
    p.handle = h;
    return p;
}

TEST(OrderWatch, DescribeForTheLog) {
    TcOrder o;
    o.error = "our tcx egress program is not attached";
    EXPECT_EQ(describe(o), "unknown (our tcx egress program is not attached)");
    EXPECT_FALSE(o.first());
    o = {};
    o.checked = true;
    EXPECT_TRUE(o.first());
    EXPECT_EQ(describe(o), "first on ingress and egress");
    o.ahead = {tcx_prog(TcDirection::Egress, 12, "foo")};
    EXPECT_FALSE(o.first());
    EXPECT_EQ(describe(o),
              "first on ingress; 1 program runs before ours on egress (tcx program id 12, name "
              "foo)");
    o.ahead = {tcx_prog(TcDirection::Ingress, 12, "foo"),
               filter(TcDirection::Ingress, 0, "u32", 1, 0x800),
               filter(TcDirection::Egress, 45, "bar", 1, 7)};
    EXPECT_EQ(describe(o),
              "2 programs run before ours on ingress (tcx program id 12, name foo; clsact filter "
              "pref 1 handle 0x800, name u32); 1 program runs before ours on egress (clsact "
              "filter pref 1 handle 0x7, program id 45, name bar)");
}

TEST(OrderWatch, StatusWireForm) {
    TcOrder o;
    o.checked = true;
    o.ahead = {tcx_prog(TcDirection::Egress, 12, "foo"),
               filter(TcDirection::Ingress, 45, "bar", 1, 7)};
    DatapathOrderStatus s = order_status(o);
    EXPECT_TRUE(s.checked);
    EXPECT_EQ(s.error, "");
    ASSERT_EQ(s.ahead.size(), 2u);
    EXPECT_EQ(s.ahead[0].direction, "egress");
    EXPECT_EQ(s.ahead[0].hook, "tcx");
    EXPECT_EQ(s.ahead[0].id, 12u);
    EXPECT_EQ(s.ahead[0].name, "foo");
    EXPECT_EQ(s.ahead[1].direction, "ingress");
    EXPECT_EQ(s.ahead[1].hook, "clsact");
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
