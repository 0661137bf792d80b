#include <cctype>
#include <cmath>

#include "cli/commands.hpp"

namespace nb::cli {

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
