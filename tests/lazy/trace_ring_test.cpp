#include "agent/lazy/trace_ring.hpp"

#include <gtest/gtest.h>

namespace nb {
namespace {

TraceEvent mode(bool lazy) {
    return ModeEvent{lazy};
}

TEST(TraceRing, KeepsTheLastEventsOldestFirst) {
    TraceRing ring(3);
    for (int64_t t = 1; t <= 5; ++t) ring.push(t, mode(t % 2 == 0));
    auto events = ring.snapshot();
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].unix_ms, 3);
    EXPECT_EQ(events[1].unix_ms, 4);
    EXPECT_EQ(events[2].unix_ms, 5);
    EXPECT_TRUE(std::get<ModeEvent>(events[1].event).lazy);
    EXPECT_EQ(ring.overwritten(), 2u);
}

TEST(TraceRing, GrowsOnlyAsEventsCome) {
    TraceRing ring(100000);
    ring.push(7, mode(true));
    EXPECT_EQ(ring.size(), 1u);
    EXPECT_EQ(ring.snapshot().size(), 1u);
    EXPECT_EQ(ring.overwritten(), 0u);
}

TEST(TraceRing, CapacityZeroKeepsNothing) {
    TraceRing ring(0);
    ring.push(1, mode(true));
    EXPECT_EQ(ring.size(), 0u);
    EXPECT_TRUE(ring.snapshot().empty());
}

}  // namespace
}  // namespace nb
