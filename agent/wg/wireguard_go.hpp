// Starting wireguard-go, the userspace WireGuard daemon, the way wg-quick does.
#pragma once

#include <string>

namespace nb {

// The program wg-quick would run: $WG_QUICK_USERSPACE_IMPLEMENTATION or "wireguard-go".
std::string wireguard_go_program();
// True if that program exists and is executable (looked up on PATH unless it has a '/').
bool wireguard_go_available();
// True if <socket_dir>/<interface>.sock exists and is a socket.
bool uapi_socket_exists(const std::string& interface,
                        const std::string& socket_dir = "/var/run/wireguard");
// Runs `wireguard-go <interface>`, which creates the tun device and the UAPI socket and
// then daemonizes, so the interface outlives the agent. Returns once the UAPI socket
// answers (bounded to a few seconds); throws WgError with the daemon's output otherwise.
void start_wireguard_go(const std::string& interface,
                        const std::string& socket_dir = "/var/run/wireguard");

}  // namespace nb
