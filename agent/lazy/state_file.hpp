// What WireGuard forgets when a peer goes idle (its endpoint and keepalive), kept in a
// root-only file under the run directory while the agent runs. A clean exit restores
// the endpoints and removes the file; after a crash (kill -9) the next `nbagent run -i`
// without a config adopts the interface and takes the endpoints from here, so no idle
// peer stays unreachable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/lazy/peer_state.hpp"

namespace nb {

struct SavedPeer {
    std::optional<std::string> endpoint;
    uint16_t keepalive = 0;
};
using SavedPeers = std::unordered_map<WgKey, SavedPeer, WgKeyHash>;

std::string state_file_path(const std::string& run_dir, const std::string& interface);

// Writes atomically (temp file + rename), mode 0600. Throws std::runtime_error.
void save_peer_state(const std::string& path, const std::vector<PeerSpec>& peers);
// Missing file: empty. A malformed file throws std::runtime_error naming the problem.
SavedPeers load_peer_state(const std::string& path);
void remove_peer_state(const std::string& path);

// Peers adopted from WireGuard lack what the agent itself removed: fill it back in.
void merge_saved_state(std::vector<PeerSpec>& peers, const SavedPeers& saved);
// Whether "host:port" is one of the UDP trigger engine's listeners (127.1.0.1 and up).
bool is_udp_listener_endpoint(const std::string& endpoint);

}  // namespace nb
