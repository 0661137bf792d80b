// wg-quick configuration files: parse and validate, with file:line in every error.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "agent/wg/key.hpp"
#include "base/net/ip.hpp"

namespace nb {

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;  // message is "file:line: problem"
};

struct InterfaceConfig {
    std::optional<WgKey> private_key;
    std::optional<uint16_t> listen_port;
    std::optional<uint32_t> fwmark;
    std::optional<uint32_t> mtu;
    std::vector<IpPrefix> addresses;  // interface address with its prefix length
};

// The least inactivity threshold, global or per peer: WireGuard's own timers are 5 s
// (rekey) and 10 s (keepalive), so a shorter one only makes peers flap between request
// and reply.
inline constexpr std::chrono::seconds kMinInactivityThreshold{10};

struct PeerConfig {
    WgKey public_key;
    std::optional<WgKey> preshared_key;
    std::vector<IpPrefix> allowed_ips;
    std::optional<std::string> endpoint;  // "host:port" as written; resolved at wake time
    uint16_t persistent_keepalive = 0;
    // nbagent extensions (comments-compatible keys, see docs/config.md)
    std::optional<std::string> connector;  // "static" (default) or "exec"
    std::vector<std::string> groups;       // Group: sorted, unique; members wake/idle together
    bool lazy = true;                      // Lazy = off: connected always, never made idle
    // InactivityThreshold: this peer's own, instead of the agent's.
    std::optional<std::chrono::milliseconds> inactivity_threshold;
    int line = 0;                          // line of the [Peer] header, for messages
};

struct WgQuickConfig {
    InterfaceConfig iface;
    std::vector<PeerConfig> peers;
    std::vector<std::string> warnings;  // "file:line: ..." for ignored wg-quick-only keys
};

// Parses and validates. Throws ConfigError on the first problem. `filename` is only the
// source name used in messages ("file:line: ..."), so text from elsewhere (e.g. the
// control socket) can be parsed with a name like "control".
WgQuickConfig parse_wg_quick(std::string_view text, std::string_view filename);
WgQuickConfig load_wg_quick(const std::string& path);  // reads the file, then parses

}  // namespace nb
