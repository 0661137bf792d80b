#include <cctype>
#include <cmath>

#include "cli/commands.hpp"

namespace nb::cli {

std::chrono::milliseconds parse_duration(std::string_view text) {
    const std::string quoted = "\"" + std::string(text) + "\"";
    auto bad = [&](const std::string& why) -> std::invalid_argument {
        return std::invalid_argument("invalid duration " + quoted + ": " + why +
                                     " (expected e.g. 500ms, 10s, 2m, 1h)");
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
            throw bad("missing unit after " + number);
        } else {
            throw bad("unknown unit \"" + std::string(unit) + "\"");
        }
        total_ms += std::stod(number) * unit_ms;
        if (total_ms > kMaxMs) throw bad("too long");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::floor(total_ms)));
}

std::chrono::milliseconds parse_inactivity_threshold(std::string_view text) {
    const std::string quoted = "\"" + std::string(text) + "\"";
    // A bare number ("15", "1.5") is minutes; anything with a unit goes to parse_duration.
    const bool bare = !text.empty() && text.find_first_not_of("0123456789.") == text.npos;
    std::chrono::milliseconds d;
    try {
        d = parse_duration(bare ? std::string(text) + "m" : std::string(text));
    } catch (const std::invalid_argument& e) {
        // parse_duration's message would quote the "m" we appended.
        if (!bare) throw UsageError(e.what());
        throw UsageError("invalid duration " + quoted +
                         " (a bare number is minutes; expected e.g. 15, 90s, 2m, 1h30m)");
    }
    if (d < kMinInactivityThreshold) {
        throw UsageError("inactivity threshold " + quoted + " is below the minimum of 10s");
    }
    return d;
}

std::optional<bool> parse_switch(std::string_view text) {
    std::string lower;
    for (char c : text)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (lower == "on" || lower == "true" || lower == "1") return true;
    if (lower == "off" || lower == "false" || lower == "0") return false;
    return std::nullopt;
}

}  // namespace nb::cli
