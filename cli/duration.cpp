#include <cctype>
#include <cmath>

#include "agent/config/setting_values.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

std::chrono::milliseconds parse_inactivity_threshold(std::string_view text) {
    try {
        return nb::parse_inactivity_threshold(text);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
}

}  // namespace nb::cli
