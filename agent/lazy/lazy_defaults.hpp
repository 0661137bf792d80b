// The lazy manager's defaults that `run`'s options share (RunOptions, and through it the
// flags): written once, here, so the manager's, the engine's and the CLI's cannot differ.
#pragma once

#include <chrono>
#include <cstdint>

namespace nb {

inline constexpr uint32_t kDefaultMaxHeld = 128;  // packets held per idle peer
inline constexpr std::chrono::milliseconds kDefaultExecTimeout = std::chrono::seconds(5);
inline constexpr std::chrono::milliseconds kDefaultConnectTimeout = std::chrono::seconds(10);
inline constexpr std::chrono::milliseconds kDefaultConnectBackoff = std::chrono::seconds(2);
inline constexpr std::chrono::milliseconds kDefaultInactivityThreshold = std::chrono::minutes(15);

}  // namespace nb
