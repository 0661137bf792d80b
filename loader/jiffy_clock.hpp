// Converting the BPF programs' activity stamps (jiffies) to CLOCK_MONOTONIC. Jiffies
// follow the monotonic clock tick by tick, so a tick length and one reference pair serve
// forever. Both are fitted here from "edges": the first sample seen after jiffies moved.
// Pure arithmetic, so that late ticks (a busy or emulated machine) can be tested.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace nb {

struct JiffyEdge {
    uint64_t jiffies = 0;
    uint64_t ns = 0;  // CLOCK_MONOTONIC when the new value was first seen
};

struct JiffyClock {
    uint64_t ns_per_jiffy = 0;
    uint64_t ref_jiffies = 0, ref_ns = 0;
    uint64_t to_ns(uint64_t jiffies) const;  // 0 (never) stays 0
};

// The kernel's tick, (1e9 + HZ/2) / HZ for HZ 100, 250, 300 or 1000, nearest to
// `measured` if it is within measured/`within_div` of it.
std::optional<uint64_t> kernel_tick_near(uint64_t measured, uint64_t within_div);

// Whether `edges` (in order) span enough time to fit: 100 ms once the mean tick is within
// 2 % of a kernel tick, else up to 1 s, since one late tick stretches a short window.
bool jiffy_edges_enough(const std::vector<JiffyEdge>& edges);

// The fit: the kernel tick within 8 % of the mean (250 and 300 Hz are 20 % apart), else
// the mean itself; the reference is the edge seen least late against that tick.
// Needs two edges at least.
JiffyClock fit_jiffy_clock(const std::vector<JiffyEdge>& edges);

}  // namespace nb
