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

// What a peer needs only while it wakes or is awake, or after a failed wake: allocated
// then, and freed when it goes back to Idle cleanly. A million peers that never woke
// pay nothing for it.
struct WakeState {
    std::optional<SockAddr> endpoint;  // what WireGuard has now (as far as we set it)
    // Waiting for the endpoint, in order. A vector, not a deque: an empty deque
    // already allocates.
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
    uint64_t trigger_ns = 0;  // CLOCK_MONOTONIC of the waking packet
    std::string trigger_reason;
    uint32_t failures = 0;          // failed wakes in a row
    uint64_t retry_after_ns = 0;    // backoff: no wake before this
    uint64_t backoff_trace_ns = 0;  // last "dropped during backoff" trace event
    std::string last_error;
};

// The rarely set parts of a peer's config, out of line.
struct PeerExtra {
    std::optional<WgKey> preshared_key;
    std::optional<std::string> connector_spec;  // "static" | "exec:..."
    std::shared_ptr<Connector> connector;       // null: the shared static one
    std::vector<std::string> groups;            // sorted; members wake and idle together
};

// One managed peer. Every peer has one, idle or not, so it stays small (issue 6: a
// million idle peers in under 512 bytes each, kernel maps included): config that most
// peers lack is in `extra`, wake state in `wake`.
struct ManagedPeer {
    WgKey key;
    std::vector<IpPrefix> allowed_ips;
    std::string endpoint_spec;  // "host:port" as configured; empty: none
    std::unique_ptr<PeerExtra> extra;
    std::unique_ptr<WakeState> wake;
    uint64_t idle_since_ns = 0;  // WireGuard forgot the session at this time
    uint64_t agent_dropped = 0;  // dropped in user space: over the limit, failures, backoff
    uint32_t id = 0;
    uint32_t wakes = 0;
    float last_wake_ms = -1;
    uint16_t keepalive = 0;  // applied while Connected
    PeerState state = PeerState::Idle;
    bool in_use = false;  // false: a free id, left by a removed peer
    bool lazy = true;     // false: never-lazy, kept connected

    // Reads see a default WakeState when there is none.
    const WakeState& w() const { return wake ? *wake : kNoWake; }
    WakeState& w_mut() {
        if (!wake) wake = std::make_unique<WakeState>();
        return *wake;
    }
    std::optional<std::string> endpoint_opt() const {
        return endpoint_spec.empty() ? std::nullopt : std::optional<std::string>(endpoint_spec);
    }
    const std::optional<std::string>& connector_spec() const {
        return extra ? extra->connector_spec : kNoString;
    }
    const std::vector<std::string>& groups() const { return extra ? extra->groups : kNoGroups; }
    std::optional<WgKey> preshared_key() const {
        return extra ? extra->preshared_key : std::nullopt;
    }
    bool has_static_connector() const {
        return !extra || !extra->connector_spec || *extra->connector_spec == "static";
    }
    PeerSpec spec() const;  // the config it came from

    static const WakeState kNoWake;
    static const std::optional<std::string> kNoString;
    static const std::vector<std::string> kNoGroups;
};

// Whether a peer has this config (what a network-map diff compares).
bool matches(const ManagedPeer& p, const PeerSpec& s);

}  // namespace nb
