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
};

struct ManagedPeer {
    uint32_t id = 0;
    PeerSpec spec;
    std::shared_ptr<Connector> connector;
    PeerState state = PeerState::Idle;
    std::optional<SockAddr> endpoint;       // what WireGuard has now
    // Waiting for the endpoint, in order. A vector, not a deque: an empty deque
    // already allocates, and most peers never hold anything.
    std::vector<std::vector<uint8_t>> held;
    uint64_t job_id = 0;                    // connect job in flight (Connecting)
    uint64_t trigger_ns = 0;                // CLOCK_MONOTONIC of the waking packet
    std::string trigger_reason;
    uint64_t wakes = 0;
    uint64_t agent_dropped = 0;  // dropped in user space: over the limit, failures
    double last_wake_ms = -1;
    std::string last_error;
};

}  // namespace nb
