#include "agent/config/setting_values.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <string>

#include "agent/config/wg_quick.hpp"
#include "base/time.hpp"

namespace nb {

namespace {

std::string lower(std::string_view text) {
    std::string out;
    for (char c : text)
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
}

}  // namespace

std::optional<bool> parse_switch(std::string_view text) {
    return value_of(kSwitchNames, lower(text));
}

std::optional<bool> parse_config_switch(std::string_view text) {
    return value_of(kConfigSwitchNames, lower(text));
}

std::chrono::milliseconds parse_inactivity_threshold(std::string_view text) {
    std::string quoted = "\"";
    quoted.append(text);
    quoted.append("\"");
    // A bare number ("15", "1.5") is minutes; anything with a unit goes to parse_duration.
    const bool bare = !text.empty() && text.find_first_not_of("0123456789.") == text.npos;
    std::string spelled(text);
    if (bare) spelled.append("m");
    std::chrono::milliseconds d{0};
    try {
        d = parse_duration(spelled);
    } catch (const std::invalid_argument& e) {
        // parse_duration's message would quote the "m" appended.
        if (!bare) throw;
        std::string why = "invalid duration ";
        why.append(quoted).append(" (a bare number is minutes; expected e.g. 15, 90s, 2m, 1h30m)");
        throw std::invalid_argument(why);
    }
    if (d < kMinInactivityThreshold) {
        std::string why = "inactivity threshold ";
        why.append(quoted).append(" is below the minimum of 10s");
        throw std::invalid_argument(why);
    }
    return d;
}

}  // namespace nb
