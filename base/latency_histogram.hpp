// Latency histograms of nanosecond durations, fixed size and allocation-free to record
// into, for what the agent reports about itself (`nbagent debug bundle`).
//
// Buckets are log2 octaves cut into 8 linear parts (at most 12.5% apart), from 1.024 us
// (2^10 ns) to 137 s (2^37 ns), with one bucket below (0 to 1.024 us) and one above:
// 218 buckets, 1.7 KiB. A percentile is the upper end of the bucket it falls in, so it
// overstates by at most a bucket's width, and is never more than the largest value.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nb {

inline constexpr unsigned kHistogramSubBits = 3;  // 8 linear parts per octave
inline constexpr unsigned kHistogramMinShift = 10;
inline constexpr unsigned kHistogramMaxShift = 37;
inline constexpr size_t kHistogramBuckets =
    2 + (kHistogramMaxShift - kHistogramMinShift) * (size_t{1} << kHistogramSubBits);

// The bucket a duration falls in, and where each bucket starts and ends (the end is
// exclusive; the last bucket's is UINT64_MAX).
size_t histogram_bucket(uint64_t ns);
uint64_t histogram_bucket_lower(size_t bucket);
uint64_t histogram_bucket_upper(size_t bucket);

// What a histogram holds at one moment. min and max are 0 while count is 0. The sum
// saturates at UINT64_MAX (about 584 years).
struct HistogramSnapshot {
    uint64_t count = 0;
    uint64_t sum_ns = 0;
    uint64_t min_ns = 0;
    uint64_t max_ns = 0;
    std::array<uint64_t, kHistogramBuckets> buckets{};

    // The q-quantile (0 <= q <= 1) as the upper end of its bucket, at most max_ns;
    // 0 when empty.
    uint64_t percentile(double q) const;
    uint64_t mean_ns() const { return count ? sum_ns / count : 0; }
    // Adds another histogram's counts (e.g. the same measure from two sources).
    void merge(const HistogramSnapshot& o);
};

// For one thread (or callers that serialize): record() is a few adds, no allocation.
class LatencyHistogram {
  public:
    void record(uint64_t ns);
    const HistogramSnapshot& snapshot() const { return s_; }
    uint64_t count() const { return s_.count; }
    uint64_t percentile(double q) const { return s_.percentile(q); }

  private:
    HistogramSnapshot s_;
};

// For records from any thread: relaxed atomics, no lock. The count is the buckets' sum; a
// snapshot taken while records go on may miss a record's sum or max, or hold them alone.
class AtomicLatencyHistogram {
  public:
    void record(uint64_t ns);
    HistogramSnapshot snapshot() const;

  private:
    std::atomic<uint64_t> sum_{0};
    std::atomic<uint64_t> min_{UINT64_MAX};
    std::atomic<uint64_t> max_{0};
    std::array<std::atomic<uint64_t>, kHistogramBuckets> buckets_{};
};

// A duration in the unit that suits it, 3 significant digits: "850ns", "12.3us",
// "4.56ms", "1.20s", "3600s".
std::string format_ns(uint64_t ns);

// One line: "NAME: count=N total=T mean=M p50=A p90=B p99=C max=D | <U1:n1 <U2:n2 ...",
// each non-empty bucket by its (exclusive) upper end, the last one as ">=137s". An empty
// histogram: "NAME: count=0".
std::string render_histogram(std::string_view name, const HistogramSnapshot& s);

}  // namespace nb
