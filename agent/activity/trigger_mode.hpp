// How idle peers' first packets are noticed: the `--trigger` choice, and the engine that
// runs (status `trigger`). One table of names each, for parsing, --help, errors and the
// status.
#pragma once

#include "base/enum_names.hpp"

namespace nb {

// --trigger: the tc programs, per-peer UDP listeners, or auto (the programs when this
// kernel can run them).
enum class TriggerMode { Auto, Bpf, Udp };
inline constexpr EnumName<TriggerMode> kTriggerModeNames[] = {
    {TriggerMode::Auto, "auto"},
    {TriggerMode::Bpf, "bpf"},
    {TriggerMode::Udp, "udp"},
};
constexpr const auto& enum_names(TriggerMode) {
    return kTriggerModeNames;
}

// The engine that runs (none in eager mode).
enum class TriggerEngine { Bpf, Udp };
inline constexpr EnumName<TriggerEngine> kTriggerEngineNames[] = {
    {TriggerEngine::Bpf, "bpf"},
    {TriggerEngine::Udp, "udp"},
};
constexpr const auto& enum_names(TriggerEngine) {
    return kTriggerEngineNames;
}

}  // namespace nb
