// The registry of the event loop's blocking calls: counts per kind, threads off the loop.
#include "base/blocking.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace nb {
namespace {

uint64_t count_of(BlockingKind kind) {
    for (const auto& s : blocking_snapshot())
        if (s.kind == kind) return s.waits.count;
    ADD_FAILURE() << "no " << to_string(kind) << " in the snapshot";
    return 0;
}

TEST(Blocking, EveryKindHasANameAndAPlaceInTheSnapshot) {
    auto snap = blocking_snapshot();
    ASSERT_EQ(snap.size(), kBlockingKinds);
    for (size_t i = 0; i < kBlockingKinds; ++i) {
        EXPECT_EQ(static_cast<size_t>(snap[i].kind), i);
        EXPECT_STRNE(to_string(snap[i].kind), "unknown");
    }
    EXPECT_STREQ(to_string(BlockingKind::WgUapi), "wg-uapi");
    EXPECT_STREQ(to_string(BlockingKind::StateFile), "state-file");
}

TEST(Blocking, ATimerCountsOneWaitOfItsKind) {
    const uint64_t uapi = count_of(BlockingKind::WgUapi);
    const uint64_t rtnl = count_of(BlockingKind::Rtnetlink);
    for (int i = 0; i < 3; ++i) {
        BlockingTimer t(BlockingKind::WgUapi);
        std::this_thread::yield();  // the "call"
    }
    EXPECT_EQ(count_of(BlockingKind::WgUapi), uapi + 3);
    EXPECT_EQ(count_of(BlockingKind::Rtnetlink), rtnl);
}

TEST(Blocking, RecordAddsToCountTotalAndMax) {
    auto before = blocking_snapshot()[static_cast<size_t>(BlockingKind::Dns)].waits;
    record_blocking(BlockingKind::Dns, 5'000'000);
    auto after = blocking_snapshot()[static_cast<size_t>(BlockingKind::Dns)].waits;
    EXPECT_EQ(after.count, before.count + 1);
    EXPECT_EQ(after.sum_ns, before.sum_ns + 5'000'000);
    EXPECT_GE(after.max_ns, 5'000'000u);
}

TEST(Blocking, TimersOnAThreadOffTheLoopCountNothingButRecordsDo) {
    const uint64_t netlink = count_of(BlockingKind::WgNetlink);
    const uint64_t connector = count_of(BlockingKind::Connector);
    bool off = false;
    std::thread worker([&] {
        mark_thread_off_loop();
        off = thread_is_off_loop();
        { BlockingTimer t(BlockingKind::WgNetlink); }
        record_blocking(BlockingKind::Connector, 1000);
    });
    worker.join();
    EXPECT_TRUE(off);
    EXPECT_FALSE(thread_is_off_loop());  // only the thread that said so
    EXPECT_EQ(count_of(BlockingKind::WgNetlink), netlink);
    EXPECT_EQ(count_of(BlockingKind::Connector), connector + 1);
}

TEST(Blocking, RendersALinePerKind) {
    record_blocking(BlockingKind::ControlClient, 2000);
    const std::string text = render_blocking(blocking_snapshot());
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(kBlockingKinds));
    EXPECT_NE(text.find("blocking wg-uapi: count="), std::string::npos) << text;
    EXPECT_NE(text.find("blocking control-client: count="), std::string::npos) << text;
}

}  // namespace
}  // namespace nb
