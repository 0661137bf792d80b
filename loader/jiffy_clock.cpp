#include "loader/jiffy_clock.hpp"

#include <stdexcept>

namespace nb {
namespace {

constexpr uint64_t kShortWindowNs = 100'000'000, kLongWindowNs = 1'000'000'000;

uint64_t mean_tick(const std::vector<JiffyEdge>& e) {
    return (e.back().ns - e.front().ns) / (e.back().jiffies - e.front().jiffies);
}

}  // namespace

uint64_t JiffyClock::to_ns(uint64_t jiffies) const {
    if (jiffies == 0) return 0;
    int64_t dj = static_cast<int64_t>(jiffies - ref_jiffies);
    int64_t ns = static_cast<int64_t>(ref_ns) + dj * static_cast<int64_t>(ns_per_jiffy);
    return ns > 0 ? static_cast<uint64_t>(ns) : 1;
}

std::optional<uint64_t> kernel_tick_near(uint64_t measured, uint64_t within_div) {
    std::optional<uint64_t> best;
    uint64_t best_d = UINT64_MAX;
    for (uint64_t hz : {100, 250, 300, 1000}) {
        uint64_t tick = (1'000'000'000ull + hz / 2) / hz;
        uint64_t d = tick > measured ? tick - measured : measured - tick;
        if (d < best_d && d * within_div < tick) {
            best_d = d;
            best = tick;
        }
    }
    return best;
}

bool jiffy_edges_enough(const std::vector<JiffyEdge>& edges) {
    if (edges.size() < 2) return false;
    uint64_t span = edges.back().ns - edges.front().ns;
    if (span >= kLongWindowNs) return true;
    return span >= kShortWindowNs && kernel_tick_near(mean_tick(edges), 50).has_value();
}

JiffyClock fit_jiffy_clock(const std::vector<JiffyEdge>& edges) {
    if (edges.size() < 2 || edges.back().jiffies <= edges.front().jiffies ||
        edges.back().ns <= edges.front().ns)
        throw std::invalid_argument("fitting the jiffy clock needs two edges in order");
    JiffyClock c;
    const uint64_t mean = mean_tick(edges);
    c.ns_per_jiffy = kernel_tick_near(mean, 12).value_or(mean);
    // Every edge is seen at or after its true time, never before: the least late one, the
    // smallest time against the fitted tick, is the best reference.
    int64_t best = INT64_MAX;
    for (const JiffyEdge& e : edges) {
        int64_t off =
            static_cast<int64_t>(e.ns) - static_cast<int64_t>(e.jiffies - edges.front().jiffies) *
                                             static_cast<int64_t>(c.ns_per_jiffy);
        if (off < best) {
            best = off;
            c.ref_jiffies = e.jiffies;
            c.ref_ns = e.ns;
        }
    }
    return c;
}

}  // namespace nb
