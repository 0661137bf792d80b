// The wake admission bucket (agent/lazy/wake_admission.hpp) with time passed in.
#include "agent/lazy/wake_admission.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace nb {
namespace {

constexpr uint64_t kSec = 1000000000ull;
using V = WakeAdmission::Verdict;

TEST(WakeAdmission, UnlimitedAdmitsEverythingAtOnce) {
    WakeAdmission a(0);
    EXPECT_FALSE(a.limited());
    for (uint32_t id = 0; id < 10000; ++id) EXPECT_EQ(a.request(id, kSec), V::Now);
    EXPECT_TRUE(a.admit(2 * kSec).empty());
    EXPECT_EQ(a.deferred(), 0u);
}

TEST(WakeAdmission, ASecondsWorthAtOnceThenTheRateInOrder) {
    WakeAdmission a(4, 3);  // 4 a second, at most 3 waiting
    const uint64_t t0 = 10 * kSec;
    for (uint32_t id = 0; id < 4; ++id) EXPECT_EQ(a.request(id, t0), V::Now) << id;
    EXPECT_EQ(a.request(4, t0), V::Queued);
    EXPECT_EQ(a.request(5, t0), V::Queued);
    EXPECT_EQ(a.request(4, t0), V::Queued) << "asking again changes nothing";
    EXPECT_EQ(a.request(6, t0), V::Queued);
    EXPECT_EQ(a.request(7, t0), V::Shed) << "the queue holds 3";
    EXPECT_EQ(a.queued(), 3u);
    EXPECT_TRUE(a.admit(t0 + kSec / 8).empty()) << "half a token";
    EXPECT_EQ(a.admit(t0 + kSec / 4), (std::vector<uint32_t>{4}));
    // A newcomer does not overtake those waiting, even with a token free.
    EXPECT_EQ(a.request(8, t0 + kSec / 4 + kSec / 4), V::Queued);
    EXPECT_EQ(a.admit(t0 + kSec), (std::vector<uint32_t>{5, 6, 8}));
    EXPECT_EQ(a.queued(), 0u);
    EXPECT_EQ(a.deferred(), 4u);
    EXPECT_EQ(a.shed(), 1u);
    // Tokens never pile up beyond a second's worth.
    const uint64_t later = t0 + 100 * kSec;
    a.admit(later);
    for (uint32_t id = 100; id < 104; ++id) EXPECT_EQ(a.request(id, later), V::Now);
    EXPECT_EQ(a.request(104, later), V::Queued);
}

TEST(WakeAdmission, ForgottenPeersAreSkipped) {
    WakeAdmission a(1, 100);
    EXPECT_EQ(a.request(1, kSec), V::Now);
    EXPECT_EQ(a.request(2, kSec), V::Queued);
    EXPECT_EQ(a.request(3, kSec), V::Queued);
    a.forget(2);
    EXPECT_FALSE(a.is_queued(2));
    EXPECT_EQ(a.admit(2 * kSec), (std::vector<uint32_t>{3}));
    // Forgetting and asking again many times does not grow the queue without bound.
    for (int i = 0; i < 10000; ++i) {
        a.request(7, 2 * kSec);
        a.forget(7);
    }
    EXPECT_EQ(a.queued(), 0u);
}

TEST(WakeAdmission, AdmitsAtMostAChunkAndTheRestKeepTheirPlaceAndTokens) {
    WakeAdmission a(4, 8);
    const uint64_t t0 = 10 * kSec;
    for (uint32_t id = 0; id < 4; ++id) EXPECT_EQ(a.request(id, t0), V::Now);
    for (uint32_t id = 4; id < 8; ++id) EXPECT_EQ(a.request(id, t0), V::Queued);
    EXPECT_EQ(a.admit(t0 + kSec, 3), (std::vector<uint32_t>{4, 5, 6}));
    EXPECT_EQ(a.admit(t0 + kSec, 3), (std::vector<uint32_t>{7})) << "its token was kept";
}

}  // namespace
}  // namespace nb
