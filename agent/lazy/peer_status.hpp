// What the lazy manager reports of itself and of each peer, for `nbagent status`. The
// control protocol maps these into its reply (agent/control/protocol.hpp), together
// with what the engine knows (backend, trigger, datapath order, WireGuard's health).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "agent/lazy/state.hpp"
#include "base/net/ip.hpp"

namespace nb {

struct PeerStatus {
    std::string public_key;  // base64
    std::vector<std::string> allowed_ips;
    PeerState state = PeerState::Idle;
    std::string endpoint;  // what WireGuard has now; "" when none
    // Where a wake will connect to: the configured Endpoint ("host:port", resolved at the
    // wake), what the node published in the store for an etcd connector, or "exec" for an
    // exec connector, which answers only then; "" when none.
    std::string wake_endpoint;
    int64_t state_since_ms = 0;  // unix time in ms the peer entered its state
    uint64_t wakes = 0;
    uint64_t held = 0;                // packets held so far (total)
    uint64_t dropped = 0;             // packets dropped (hold limit, too big, failure)
    double last_wake_ms = -1;         // trigger to Connected, -1 if never woken
    int64_t last_activity_ms = 0;     // unix time in ms of the last traffic, 0 if none
    bool lazy = true;                 // false: never-lazy (Lazy = off in the config)
    std::vector<std::string> groups;  // wake and idle together
    uint32_t failures = 0;            // failed wakes in a row (reset by a success)
    int64_t retry_in_ms = 0;          // > 0: backing off, packets are dropped until then
    std::string last_error;           // why the last wake failed, "" if it did not
    // WireGuard's figures (`wg show`): transfer since the peer woke, the latest handshake
    // (unix ms, 0: none), and when they were read (unix ms; 0: not read since WireGuard
    // last forgot the peer's session, so they are zeros, and true).
    uint64_t rx_bytes = 0, tx_bytes = 0;
    int64_t last_handshake_ms = 0;
    int64_t wg_read_ms = 0;
};

// Which peers a `status -d` lists; every peer when empty. A peer must pass each given test.
struct PeerFilter {
    std::optional<PeerState> state;
    std::string key_prefix;    // the start of the base64 public key
    std::optional<IpAddr> ip;  // the peer whose allowed IPs route this address (longest match)
    bool failing = false;      // failed wakes in a row, or backing off, or a last error
    bool empty() const { return !state && key_prefix.empty() && !ip && !failing; }
};

// Every peer's status, one after the other: fills the one PeerStatus it is given and
// returns true, or returns false after the last peer. The object is reused, so its
// strings keep their capacity: no allocation per peer in a reply for 100k peers.
using PeerStatusSource = std::function<bool(PeerStatus&)>;

// The manager's counts and settings.
struct LazyStatus {
    bool lazy = true;
    int64_t inactivity_threshold_ms = 0;
    uint64_t idle = 0, connecting = 0, connected = 0;
    // Reports the ring buffer lost, and the peers woken or confirmed from marks instead.
    uint64_t lost_reports = 0, lost_recovered = 0;
    // Wakes of unproven peers waiting for admission, that ever waited, refused.
    uint64_t wakes_queued = 0, wakes_deferred = 0, wakes_shed = 0;
    std::vector<PeerStatus> peers;  // only with detail
};

}  // namespace nb
