// Clocks and durations as the agent and the CLI show them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

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
// "500ms", "10s", "2m", "1h", "1m30s", "1.5s"; a bare number alone is seconds. Throws
// std::invalid_argument naming the text. The one parser of durations, for flags,
// control requests and config keys.
std::chrono::milliseconds parse_duration(std::string_view text);

}  // namespace nb
