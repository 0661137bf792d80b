// Which WireGuard the agent drives: the `--wg` choice, and the backend that runs (status
// `wg_backend`). One table of names each, for parsing, --help, errors and the status.
#pragma once

#include "base/enum_names.hpp"

namespace nb {

// --wg: auto takes kernel WireGuard where the kernel has it, else wireguard-go.
enum class WgMode { Auto, Kernel, Userspace };
inline constexpr EnumName<WgMode> kWgModeNames[] = {
    {WgMode::Auto, "auto"},
    {WgMode::Kernel, "kernel"},
    {WgMode::Userspace, "userspace"},
};
constexpr const auto& enum_names(WgMode) {
    return kWgModeNames;
}

// The backend that runs: kernel WireGuard (generic netlink) or wireguard-go (UAPI).
enum class WgBackend { Kernel, Userspace };
inline constexpr EnumName<WgBackend> kWgBackendNames[] = {
    {WgBackend::Kernel, "kernel"},
    {WgBackend::Userspace, "userspace"},
};
constexpr const auto& enum_names(WgBackend) {
    return kWgBackendNames;
}

}  // namespace nb
