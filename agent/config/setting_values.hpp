// The values of the agent's settings that more than one source takes (a flag, an env
// variable, the settings file, a `set` request, a wg-quick key): one parser each, so a
// spelling one accepts no other refuses.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace nb {

// Log levels as `--log-level`, `set log-level` and the settings file spell them, in
// spdlog's order (its level_enum indexes them).
inline constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error"};
bool is_log_level(std::string_view text);

// on|off, with true/false and 1/0 as aliases, in any case.
std::optional<bool> parse_switch(std::string_view text);

// An inactivity threshold: a duration ("90s", "1h30m"), a bare number being minutes, at
// least kMinInactivityThreshold. Throws std::invalid_argument naming the problem
// (without saying where the text came from: the caller knows).
std::chrono::milliseconds parse_inactivity_threshold(std::string_view text);

}  // namespace nb
