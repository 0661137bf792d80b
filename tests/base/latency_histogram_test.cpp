// Log-scale latency histograms: their buckets, percentiles, edge values and one-line text.
#include "base/latency_histogram.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace nb {
namespace {

constexpr uint64_t kUs = 1000, kMs = 1000 * kUs, kSec = 1000 * kMs;

TEST(LatencyHistogram, BucketsAreOctavesInEightParts) {
    EXPECT_EQ(kHistogramBuckets, 218u);
    EXPECT_EQ(histogram_bucket(0), 0u);
    EXPECT_EQ(histogram_bucket(1023), 0u);
    EXPECT_EQ(histogram_bucket(1024), 1u);
    EXPECT_EQ(histogram_bucket(1024 + 127), 1u);
    EXPECT_EQ(histogram_bucket(1024 + 128), 2u);
    EXPECT_EQ(histogram_bucket(2047), 8u);
    EXPECT_EQ(histogram_bucket(2048), 9u);
    EXPECT_EQ(histogram_bucket(2048 + 255), 9u);
    EXPECT_EQ(histogram_bucket(2048 + 256), 10u);
    EXPECT_EQ(histogram_bucket((uint64_t{1} << 37) - 1), kHistogramBuckets - 2);
    EXPECT_EQ(histogram_bucket(uint64_t{1} << 37), kHistogramBuckets - 1);
    EXPECT_EQ(histogram_bucket(UINT64_MAX), kHistogramBuckets - 1);
}

TEST(LatencyHistogram, EveryBucketsBoundsAgreeWithTheBucketOfAValue) {
    EXPECT_EQ(histogram_bucket_lower(0), 0u);
    EXPECT_EQ(histogram_bucket_upper(kHistogramBuckets - 1), UINT64_MAX);
    for (size_t i = 0; i + 1 < kHistogramBuckets; ++i) {
        const uint64_t lo = histogram_bucket_lower(i), hi = histogram_bucket_upper(i);
        ASSERT_LT(lo, hi) << i;
        EXPECT_EQ(histogram_bucket(lo), i);
        EXPECT_EQ(histogram_bucket(hi - 1), i);
        EXPECT_EQ(histogram_bucket(hi), i + 1);
        // At most an eighth of the value wide above the first bucket: percentiles
        // overstate by at most 12.5%.
        if (i > 0) {
            EXPECT_LE((hi - lo) * 8, lo) << i;
        }
    }
}

TEST(LatencyHistogram, CountsSumMinAndMax) {
    LatencyHistogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.percentile(0.5), 0u);
    h.record(5 * kMs);
    h.record(1 * kMs);
    h.record(3 * kMs);
    const HistogramSnapshot& s = h.snapshot();
    EXPECT_EQ(s.count, 3u);
    EXPECT_EQ(s.sum_ns, 9 * kMs);
    EXPECT_EQ(s.min_ns, 1 * kMs);
    EXPECT_EQ(s.max_ns, 5 * kMs);
    EXPECT_EQ(s.mean_ns(), 3 * kMs);
}

TEST(LatencyHistogram, APercentileIsItsBucketsUpperEndAndNeverAboveTheMax) {
    LatencyHistogram h;
    for (int i = 0; i < 90; ++i) h.record(10 * kUs);
    for (int i = 0; i < 9; ++i) h.record(2 * kMs);
    h.record(1 * kSec);
    const uint64_t upper_10us = histogram_bucket_upper(histogram_bucket(10 * kUs));
    EXPECT_GT(upper_10us, 10 * kUs);
    EXPECT_EQ(h.percentile(0.5), upper_10us);
    EXPECT_EQ(h.percentile(0.9), upper_10us);  // the 90th of 100 values
    EXPECT_EQ(h.percentile(0.91), histogram_bucket_upper(histogram_bucket(2 * kMs)));
    EXPECT_EQ(h.percentile(0.99), histogram_bucket_upper(histogram_bucket(2 * kMs)));
    EXPECT_EQ(h.percentile(1.0), 1 * kSec);  // the max, not its bucket's end
    EXPECT_EQ(h.percentile(0.0), upper_10us);
    // Out of range: clamped.
    EXPECT_EQ(h.percentile(-1), upper_10us);
    EXPECT_EQ(h.percentile(2), 1 * kSec);
}

TEST(LatencyHistogram, ASingleValueIsEveryPercentile) {
    LatencyHistogram h;
    h.record(1500);
    EXPECT_EQ(h.percentile(0.5), 1500u);
    EXPECT_EQ(h.percentile(0.99), 1500u);
}

TEST(LatencyHistogram, ZeroAndHugeValues) {
    LatencyHistogram h;
    h.record(0);
    EXPECT_EQ(h.snapshot().buckets[0], 1u);
    EXPECT_EQ(h.percentile(0.5), 0u);
    EXPECT_EQ(h.snapshot().min_ns, 0u);
    h.record(UINT64_MAX);
    EXPECT_EQ(h.snapshot().buckets[kHistogramBuckets - 1], 1u);
    EXPECT_EQ(h.snapshot().max_ns, UINT64_MAX);
    EXPECT_EQ(h.percentile(1.0), UINT64_MAX);
    EXPECT_EQ(h.percentile(0.5), 1024u);  // the first bucket's end, now below the max
    h.record(UINT64_MAX);
    EXPECT_EQ(h.snapshot().sum_ns, UINT64_MAX);  // saturates, does not wrap
    EXPECT_EQ(h.count(), 3u);
}

TEST(LatencyHistogram, MergeAddsCounts) {
    LatencyHistogram a, b;
    a.record(2 * kMs);
    b.record(1 * kMs);
    b.record(7 * kMs);
    HistogramSnapshot s = a.snapshot();
    s.merge(b.snapshot());
    EXPECT_EQ(s.count, 3u);
    EXPECT_EQ(s.sum_ns, 10 * kMs);
    EXPECT_EQ(s.min_ns, 1 * kMs);
    EXPECT_EQ(s.max_ns, 7 * kMs);
    HistogramSnapshot empty;
    empty.merge(b.snapshot());
    EXPECT_EQ(empty.min_ns, 1 * kMs);
}

TEST(LatencyHistogram, TheAtomicOneCountsRecordsFromEveryThread) {
    AtomicLatencyHistogram h;
    EXPECT_EQ(h.snapshot().count, 0u);
    EXPECT_EQ(h.snapshot().min_ns, 0u);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&h, t] {
            for (int i = 0; i < 1000; ++i) h.record(static_cast<uint64_t>(t + 1) * kMs);
        });
    for (auto& t : threads) t.join();
    HistogramSnapshot s = h.snapshot();
    EXPECT_EQ(s.count, 4000u);
    EXPECT_EQ(s.sum_ns, 10000 * kMs);
    EXPECT_EQ(s.min_ns, 1 * kMs);
    EXPECT_EQ(s.max_ns, 4 * kMs);
    EXPECT_EQ(s.percentile(1.0), 4 * kMs);
}

TEST(LatencyHistogram, FormatsDurationsWithThreeDigits) {
    EXPECT_EQ(format_ns(0), "0ns");
    EXPECT_EQ(format_ns(999), "999ns");
    EXPECT_EQ(format_ns(1000), "1.00us");
    EXPECT_EQ(format_ns(12345), "12.3us");
    EXPECT_EQ(format_ns(4560000), "4.56ms");
    EXPECT_EQ(format_ns(250 * kMs), "250ms");
    EXPECT_EQ(format_ns(1200 * kMs), "1.20s");
    EXPECT_EQ(format_ns(3600 * kSec), "3600s");
}

TEST(LatencyHistogram, RendersOneLineWithPercentilesAndNonEmptyBuckets) {
    LatencyHistogram h;
    EXPECT_EQ(render_histogram("x", h.snapshot()), "x: count=0");
    h.record(1500);  // bucket [1408, 1536)
    EXPECT_EQ(render_histogram("x", h.snapshot()),
              "x: count=1 total=1.50us mean=1.50us p50=1.50us p90=1.50us p99=1.50us max=1.50us "
              "| <1.54us:1");
    h.record(10);
    h.record(UINT64_MAX);
    const std::string line = render_histogram("y", h.snapshot());
    EXPECT_NE(line.find(" <1.02us:1 <1.54us:1 >=137s:1"), std::string::npos) << line;
    EXPECT_EQ(line.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace nb
