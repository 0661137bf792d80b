// One managed peer: its configuration and where it is in Idle -> Connecting -> Connected.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/connector/connector.hpp"
#include "agent/control/protocol.hpp"
#include "agent/wg/wg_control.hpp"

namespace nb {

// What the config (or the adopted interface) says about a peer.
struct PeerSpec {
    WgPeer wg;  // key, preshared key, allowed IPs; endpoint/keepalive below
    std::optional<std::string> endpoint;   // "host:port" as configured
    uint16_t keepalive = 0;                // applied while Connected
    std::optional<std::string> connector;  // "static" | "exec:..."
    std::vector<std::string> groups;       // sorted; members wake and idle together
    bool lazy = true;                      // false: never-lazy, kept connected
};

// Whether two specs describe the same peer setup (what a network-map diff compares).
bool same_spec(const PeerSpec& a, const PeerSpec& b);

struct ManagedPeer {
    uint32_t id = 0;
    bool in_use = false;  // false: a free id, left by a removed peer
    PeerSpec spec;
    std::shared_ptr<Connector> connector;
    PeerState state = PeerState::Idle;
    std::optional<SockAddr> endpoint;  // what WireGuard has now (as far as we set it)
    // Waiting for the endpoint, in order. A vector, not a deque: an empty deque
    // already allocates, and most peers never hold anything.
    std::vector<std::vector<uint8_t>> held;
    uint64_t job_id = 0;              // connect job in flight (Connecting, no endpoint yet)
    bool awaiting_handshake = false;  // Connecting with the endpoint set
    uint64_t deadline_ns = 0;         // Connecting: give up at
    uint64_t endpoint_set_ns = 0;
    uint32_t replayed = 0;      // re-injected since: what WireGuard discards on failure
    uint64_t connected_ns = 0;  // start of the current Connected period
    // The UDP engine sees no traffic: WireGuard's byte counters at the last scan, and
    // when they last grew by more than keepalives and handshakes explain.
    uint64_t wg_rx_bytes = 0, wg_tx_bytes = 0, wg_active_ns = 0;
    uint64_t idle_since_ns = 0;  // WireGuard forgot the session at this time
    uint64_t trigger_ns = 0;     // CLOCK_MONOTONIC of the waking packet
    std::string trigger_reason;
    uint64_t wakes = 0;
    uint64_t agent_dropped = 0;  // dropped in user space: over the limit, failures, backoff
    double last_wake_ms = -1;
    uint32_t failures = 0;          // failed wakes in a row
    uint64_t retry_after_ns = 0;    // backoff: no wake before this
    uint64_t backoff_trace_ns = 0;  // last "dropped during backoff" trace event
    std::string last_error;
};

}  // namespace nb
