// The order check as the log reads it (describe); its wire form is tested in
// tests/control/status_map_test.cpp.
#include <gtest/gtest.h>

#include "tests/support/programs_ahead.hpp"

#include "agent/activity/order_watch.hpp"
#include "loader/tc_order.hpp"

namespace nb {
namespace {

using test::filter;
using test::tcx_prog;

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

}  // namespace
}  // namespace nb
