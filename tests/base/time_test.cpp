// Times as the agent shows them.
#include "base/time.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace nb {
namespace {

TEST(Time, Rfc3339OfAUnixTime) {
    EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(rfc3339(1714572123123), "2024-05-01T14:02:03.123Z");
    EXPECT_EQ(rfc3339(1714572123007), "2024-05-01T14:02:03.007Z");
}

TEST(Time, Rfc3339NowHasMilliseconds) {
    EXPECT_TRUE(
        std::regex_match(rfc3339_now(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
    const int64_t before = unix_ms();
    EXPECT_GE(unix_ms(), before);
}

TEST(Time, FormatDuration) {
    EXPECT_EQ(format_duration(std::chrono::milliseconds(0)), "0s");
    EXPECT_EQ(format_duration(std::chrono::milliseconds(90'000)), "1m30s");
    EXPECT_EQ(format_duration(std::chrono::milliseconds(5'400'250)), "1h30m250ms");
}

}  // namespace
}  // namespace nb
