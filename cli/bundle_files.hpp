// The files of a debug bundle the CLI makes itself, and the last guard before packing:
// no private or preshared key leaves the machine, anonymized or not.
#pragma once

#include <string>
#include <string_view>
#include <unordered_set>

#include "agent/wg/wg_control.hpp"

namespace nb::cli {

// The device as `wg show dump` lays it out (tab-separated; the interface line first,
// then one line per peer), with "(hidden)" where WireGuard's private key and a peer's
// preshared key would be.
std::string wireguard_dump(const WgDevice& dev);

// The device's private key and every preshared key, in base64 and hex: what
// scrub_secrets must never let through.
std::unordered_set<std::string> secrets_of(const WgDevice& dev);

// Replaces each key of `secrets` in `text` (a base64 key: 43 characters and '='; a hex
// key: 64 hex digits; not part of a longer run of such characters) with "(removed)";
// returns how many it replaced.
size_t scrub_secrets(std::string& text, const std::unordered_set<std::string>& secrets);

// README.txt: what each file of a bundle holds.
std::string bundle_readme(bool anonymized, std::string_view cpu_profile);

}  // namespace nb::cli
