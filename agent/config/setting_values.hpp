// The values of the agent's settings that more than one source takes (a flag, an env
// variable, the settings file, a `set` request, a wg-quick key): one parser each, so a
// spelling one accepts no other refuses.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "base/enum_names.hpp"

namespace nb {

// Log levels as `--log-level`, `set log-level` and the settings file spell them, in
// spdlog's order (its level_enum indexes them; the engine checks that).
enum class LogLevel { Trace, Debug, Info, Warn, Error };
inline constexpr EnumName<LogLevel> kLogLevelNames[] = {
    {LogLevel::Trace, "trace"}, {LogLevel::Debug, "debug"}, {LogLevel::Info, "info"},
    {LogLevel::Warn, "warn"},   {LogLevel::Error, "error"},
};
constexpr const auto& enum_names(LogLevel) {
    return kLogLevelNames;
}

// A switch (--lazy-conn, --udp-forward-handshake, `set lazy`, a peer's Lazy): on|off, with
// true/false and 1/0 as aliases, in any case. The first name of a value is how it is
// shown.
inline constexpr EnumName<bool> kSwitchNames[] = {
    {true, "on"}, {false, "off"}, {true, "true"}, {false, "false"}, {true, "1"}, {false, "0"},
};
std::optional<bool> parse_switch(std::string_view text);
// A peer's `Lazy =` in a wg-quick config: the same, and yes/no as well.
inline constexpr EnumName<bool> kConfigSwitchNames[] = {
    {true, "on"},  {false, "off"}, {true, "true"}, {false, "false"},
    {true, "yes"}, {false, "no"},  {true, "1"},    {false, "0"},
};
std::optional<bool> parse_config_switch(std::string_view text);
inline const char* switch_name(bool on) {
    return name_of(kSwitchNames, on, "?");
}

// An inactivity threshold: a duration ("90s", "1h30m"), a bare number being minutes, at
// least kMinInactivityThreshold. Throws std::invalid_argument naming the problem
// (without saying where the text came from: the caller knows).
std::chrono::milliseconds parse_inactivity_threshold(std::string_view text);

}  // namespace nb
