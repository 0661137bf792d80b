#include "base/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>

namespace nb {

namespace {

constexpr size_t kSubBuckets = size_t{1} << kHistogramSubBits;

uint64_t saturating_add(uint64_t a, uint64_t b) {
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

// Keeps the smaller (or larger) of what is there and `v`, without a lock.
void keep_min(std::atomic<uint64_t>& a, uint64_t v) {
    uint64_t cur = a.load(std::memory_order_relaxed);
    while (v < cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

void keep_max(std::atomic<uint64_t>& a, uint64_t v) {
    uint64_t cur = a.load(std::memory_order_relaxed);
    while (v > cur && !a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
    }
}

}  // namespace

size_t histogram_bucket(uint64_t ns) {
    if (ns < (uint64_t{1} << kHistogramMinShift)) return 0;
    const unsigned shift = static_cast<unsigned>(std::bit_width(ns)) - 1;
    if (shift >= kHistogramMaxShift) return kHistogramBuckets - 1;
    const size_t part = (ns >> (shift - kHistogramSubBits)) & (kSubBuckets - 1);
    return 1 + (shift - kHistogramMinShift) * kSubBuckets + part;
}

uint64_t histogram_bucket_lower(size_t bucket) {
    if (bucket == 0) return 0;
    if (bucket >= kHistogramBuckets - 1) return uint64_t{1} << kHistogramMaxShift;
    const unsigned shift = kHistogramMinShift + static_cast<unsigned>((bucket - 1) / kSubBuckets);
    const uint64_t part = (bucket - 1) % kSubBuckets;
    return (uint64_t{1} << shift) + part * (uint64_t{1} << (shift - kHistogramSubBits));
}

uint64_t histogram_bucket_upper(size_t bucket) {
    if (bucket >= kHistogramBuckets - 1) return UINT64_MAX;
    return histogram_bucket_lower(bucket + 1);
}

uint64_t HistogramSnapshot::percentile(double q) const {
    if (count == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    // The rank of the value asked for, 1-based: the smallest covering a q share.
    const auto rank = std::clamp<uint64_t>(
        static_cast<uint64_t>(std::ceil(q * static_cast<double>(count))), 1, count);
    uint64_t seen = 0;
    for (size_t i = 0; i < kHistogramBuckets; ++i) {
        seen += buckets[i];
        if (seen >= rank) return std::min(histogram_bucket_upper(i), max_ns);
    }
    return max_ns;  // counts read while records went on (the atomic variant)
}

void HistogramSnapshot::merge(const HistogramSnapshot& o) {
    if (o.count == 0) return;
    min_ns = count ? std::min(min_ns, o.min_ns) : o.min_ns;
    max_ns = std::max(max_ns, o.max_ns);
    count += o.count;
    sum_ns = saturating_add(sum_ns, o.sum_ns);
    for (size_t i = 0; i < kHistogramBuckets; ++i) buckets[i] += o.buckets[i];
}

void LatencyHistogram::record(uint64_t ns) {
    s_.min_ns = s_.count ? std::min(s_.min_ns, ns) : ns;
    s_.max_ns = std::max(s_.max_ns, ns);
    ++s_.count;
    s_.sum_ns = saturating_add(s_.sum_ns, ns);
    ++s_.buckets[histogram_bucket(ns)];
}

void AtomicLatencyHistogram::record(uint64_t ns) {
    buckets_[histogram_bucket(ns)].fetch_add(1, std::memory_order_relaxed);
    // Saturating like the plain histogram's: only a sum near 584 years pays the loop.
    uint64_t cur = sum_.load(std::memory_order_relaxed);
    while (!sum_.compare_exchange_weak(cur, saturating_add(cur, ns), std::memory_order_relaxed)) {
    }
    keep_min(min_, ns);
    keep_max(max_, ns);
}

HistogramSnapshot AtomicLatencyHistogram::snapshot() const {
    HistogramSnapshot s;
    for (size_t i = 0; i < kHistogramBuckets; ++i) {
        s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
        s.count += s.buckets[i];  // agrees with the buckets, unlike count_ read apart
    }
    s.sum_ns = sum_.load(std::memory_order_relaxed);
    s.max_ns = max_.load(std::memory_order_relaxed);
    s.min_ns = s.count ? std::min(min_.load(std::memory_order_relaxed), s.max_ns) : 0;
    return s;
}

std::string format_ns(uint64_t ns) {
    static constexpr struct {
        uint64_t scale;
        const char* unit;
    } kUnits[] = {{1000000000, "s"}, {1000000, "ms"}, {1000, "us"}};
    for (const auto& u : kUnits) {
        if (ns < u.scale) continue;
        const double v = static_cast<double>(ns) / static_cast<double>(u.scale);
        char buf[48];
        const char* fmt = v >= 100 ? "%.0f%s" : v >= 10 ? "%.1f%s" : "%.2f%s";
        std::snprintf(buf, sizeof buf, fmt, v, u.unit);
        return buf;
    }
    return std::to_string(ns) + "ns";
}

std::string render_histogram(std::string_view name, const HistogramSnapshot& s) {
    std::string out(name);
    out += ": count=";
    out += std::to_string(s.count);
    if (s.count == 0) return out;
    // Appended piece by piece: GCC 12 at -O3 warns (-Wrestrict, a false positive) about
    // "literal" + std::string.
    auto field = [&out](const char* label, const std::string& value) {
        out += label;
        out += value;
    };
    field(" total=", format_ns(s.sum_ns));
    field(" mean=", format_ns(s.mean_ns()));
    field(" p50=", format_ns(s.percentile(0.5)));
    field(" p90=", format_ns(s.percentile(0.9)));
    field(" p99=", format_ns(s.percentile(0.99)));
    field(" max=", format_ns(s.max_ns));
    out += " |";
    for (size_t i = 0; i < kHistogramBuckets; ++i) {
        if (!s.buckets[i]) continue;
        if (i == kHistogramBuckets - 1)
            field(" >=", format_ns(histogram_bucket_lower(i)));
        else
            field(" <", format_ns(histogram_bucket_upper(i)));
        field(":", std::to_string(s.buckets[i]));
    }
    return out;
}

}  // namespace nb
