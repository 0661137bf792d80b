// Clocks and durations as the agent and the CLI show them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nb {

// CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns() reads.
uint64_t monotonic_ns();
// Unix time (CLOCK_REALTIME) in ms.
int64_t unix_ms();
// A duration as a count of ns, for sums with CLOCK_MONOTONIC stamps.
constexpr uint64_t to_ns(std::chrono::nanoseconds d) {
    return static_cast<uint64_t>(d.count());
}
// A unix time in ms in UTC, "2026-12-04T12:00:00.123Z"; and now so.
std::string rfc3339(int64_t unix_ms);
std::string rfc3339_now();
// In the units `run --inactivity-threshold` takes: "15m", "1h30m", "1m30s", "250ms",
// "1s500ms"; "0s" for zero or less.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace nb
