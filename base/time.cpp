#include "base/time.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <stdexcept>

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

std::chrono::milliseconds parse_duration(std::string_view text) {
    // Appends, not "literal" + string: GCC 12 at -O3 warns falsely (-Wrestrict) on those.
    auto bad = [&](const std::string& why) -> std::invalid_argument {
        std::string m = "invalid duration \"";
        m.append(text).append("\": ").append(why).append(" (expected e.g. 500ms, 10s, 2m, 1h)");
        return std::invalid_argument(m);
    };
    if (text.empty()) throw bad("empty");
    auto is_digit = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; };
    // More than ten years is surely a typo, and keeps the arithmetic far from overflow.
    constexpr double kMaxMs = 10.0 * 365 * 24 * 3600 * 1000;
    double total_ms = 0;
    size_t i = 0;
    while (i < text.size()) {
        const size_t num_start = i;
        while (i < text.size() && is_digit(text[i])) ++i;
        if (i < text.size() && text[i] == '.') {
            ++i;
            while (i < text.size() && is_digit(text[i])) ++i;
        }
        const std::string number(text.substr(num_start, i - num_start));
        if (number.empty() || number == "." || number.size() > 20) throw bad("expected a number");
        const size_t unit_start = i;
        while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
        const std::string_view unit = text.substr(unit_start, i - unit_start);
        double unit_ms;
        if (unit == "ms") {
            unit_ms = 1;
        } else if (unit == "s" || (unit.empty() && num_start == 0 && i == text.size())) {
            unit_ms = 1000;  // a bare number, alone, is seconds
        } else if (unit == "m") {
            unit_ms = 60'000;
        } else if (unit == "h") {
            unit_ms = 3'600'000;
        } else if (unit.empty()) {
            throw bad(std::string("missing unit after ").append(number));
        } else {
            throw bad(std::string("unknown unit \"").append(unit).append("\""));
        }
        total_ms += std::stod(number) * unit_ms;
        if (total_ms > kMaxMs) throw bad("too long");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::floor(total_ms)));
}

}  // namespace nb
