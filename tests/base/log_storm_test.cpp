// A storm of one kind of log line: the first few pass, the rest are summed up per window.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "base/log_storm.hpp"

namespace nb {
namespace {

constexpr uint64_t kSec = 1'000'000'000;

TEST(LogStorm, TheFirstFewPassTheRestAreSummedUpWhenTheWindowEnds) {
    LogStorm storm(3, std::chrono::seconds(10));
    std::vector<std::pair<std::string, uint64_t>> summaries;
    auto flush = [&](uint64_t now) {
        storm.flush(now, [&](const std::string& k, uint64_t n) { summaries.emplace_back(k, n); });
    };
    int passed = 0;
    for (int i = 0; i < 312; ++i) passed += storm.admit("failed", 100 * kSec + i) ? 1 : 0;
    EXPECT_EQ(passed, 3);
    EXPECT_TRUE(storm.admit("connected", 101 * kSec));  // another kind has its own budget
    flush(105 * kSec);
    EXPECT_TRUE(summaries.empty());  // the window is still open
    flush(110 * kSec);
    ASSERT_EQ(summaries.size(), 1u);
    EXPECT_EQ(summaries[0], std::make_pair(std::string("failed"), uint64_t{309}));
    // A new window: lines pass again.
    EXPECT_TRUE(storm.admit("failed", 111 * kSec));
    flush(111 * kSec + 5);
    flush(200 * kSec);
    EXPECT_EQ(summaries.size(), 1u);  // nothing was held back since
}

}  // namespace
}  // namespace nb
