#include "base/time.hpp"

#include <cstdio>
#include <ctime>

namespace nb {

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

int64_t unix_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

std::string rfc3339(int64_t unix_ms) {
    const auto sec = static_cast<time_t>(unix_ms / 1000);
    tm t{};
    gmtime_r(&sec, &t);
    char buf[40];
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &t);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
    return buf;
}

std::string rfc3339_now() {
    return rfc3339(unix_ms());
}

std::string format_duration(std::chrono::milliseconds d) {
    int64_t ms = d.count();
    if (ms <= 0) return "0s";
    std::string out;
    auto part = [&](int64_t unit, const char* name) {
        if (ms >= unit) {
            out += std::to_string(ms / unit) + name;
            ms %= unit;
        }
    };
    part(3'600'000, "h");
    part(60'000, "m");
    part(1'000, "s");
    part(1, "ms");
    return out;
}

}  // namespace nb
