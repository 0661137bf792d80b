// One managed peer: its configuration and where it is in Idle -> Connecting -> Connected.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/connector/connector.hpp"
#include "agent/lazy/state.hpp"
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
    // InactivityThreshold: this peer's own, instead of the agent's.
    std::optional<std::chrono::milliseconds> inactivity_threshold;
};

// A peer's allowed IPs: up to two (an IPv4 and an IPv6 address, the usual peer) in
// place, more on the heap. A vector would cost its 24 bytes plus a heap block for every
// one of a million peers, and its blocks, made while a config is parsed, pin the
// parse's freed memory page by page.
class PrefixList {
  public:
    PrefixList() = default;
    PrefixList(const PrefixList& o) { assign(o.span()); }
    PrefixList& operator=(const PrefixList& o) {
        if (this != &o) assign(o.span());
        return *this;
    }
    PrefixList(PrefixList&&) noexcept = default;
    PrefixList& operator=(PrefixList&&) noexcept = default;

    void assign(std::span<const IpPrefix> v) {
        heap_.reset();
        n_ = static_cast<uint32_t>(v.size());
        if (v.size() > local_.size()) {
            heap_ = std::make_unique<IpPrefix[]>(v.size());
            std::copy(v.begin(), v.end(), heap_.get());
        } else {
            std::copy(v.begin(), v.end(), local_.begin());
        }
    }
    const IpPrefix* data() const { return heap_ ? heap_.get() : local_.data(); }
    size_t size() const { return n_; }
    bool empty() const { return n_ == 0; }
    const IpPrefix* begin() const { return data(); }
    const IpPrefix* end() const { return data() + n_; }
    const IpPrefix& operator[](size_t i) const { return data()[i]; }
    std::span<const IpPrefix> span() const { return {data(), n_}; }
    std::vector<IpPrefix> to_vector() const { return {begin(), end()}; }
    bool operator==(std::span<const IpPrefix> v) const {
        return std::equal(begin(), end(), v.begin(), v.end());
    }
    bool operator==(const PrefixList& o) const { return *this == o.span(); }
    size_t heap_bytes() const { return heap_ ? n_ * sizeof(IpPrefix) : 0; }

  private:
    std::array<IpPrefix, 2> local_{};
    std::unique_ptr<IpPrefix[]> heap_;
    uint32_t n_ = 0;
};

// A peer's transfer and handshake as WireGuard counts them (`wg show`), and when read.
struct WgPeerFigures {
    uint64_t rx_bytes = 0, tx_bytes = 0;
    int64_t last_handshake_sec = 0;  // unix time; 0: none
    uint64_t read_ns = 0;            // the manager's clock; 0: not read since the re-add
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
    uint32_t replayed = 0;           // re-injected since: what WireGuard discards on failure
    uint64_t replayed_bytes = 0;     // their IP bytes: what WireGuard's tx counter must show
    uint64_t handshake_seen_ns = 0;  // first poll that showed the handshake (0: none yet)
    uint64_t connected_ns = 0;       // start of the current Connected period
    // The UDP engine sees no traffic: WireGuard's byte counters at the last scan, and
    // when they last grew by more than keepalives and handshakes explain.
    uint64_t wg_rx_bytes = 0, wg_tx_bytes = 0, wg_active_ns = 0;
    // What status shows as WireGuard's own figures, from the last read of the device
    // (every read updates them); zeros since the peer was re-added without a session.
    WgPeerFigures wg_figures;
    uint64_t trigger_ns = 0;  // CLOCK_MONOTONIC of the waking packet
    // When the wake in progress reached its last phase (connector answered, endpoint
    // set, replay sent), for the next phase's latency (agent/lazy/wake_phases.hpp).
    // 0: none yet.
    uint64_t phase_ns = 0;
    std::string trigger_reason;
    // An operator's wake (`peer wake`): no packet will make WireGuard start a handshake,
    // so a keepalive does, until the peer is Connected.
    bool prewarm = false;
    uint32_t failures = 0;          // failed wakes in a row
    uint64_t retry_after_ns = 0;    // backoff: no wake before this
    bool undo_pending = false;      // failed, not yet Idle in WireGuard (retried each tick)
    uint64_t backoff_trace_ns = 0;  // last "dropped during backoff" trace event
    // Idle by inactivity, but WireGuard keeps the endpoint and session until then: the
    // remote may still hold its copy (see agent/lazy/kept_sessions.cpp). 0: forgotten.
    uint64_t forget_at_ns = 0;
    std::string last_error;
};

// The rarely set parts of a peer's config, out of line.
struct PeerExtra {
    std::optional<WgKey> preshared_key;
    std::string endpoint_host;  // "host:port" when not numeric (resolved at wake time)
    std::optional<std::string> connector_spec;  // "static" | "exec:..."
    std::shared_ptr<Connector> connector;       // null: the shared static one
    std::vector<std::string> groups;            // sorted; members wake and idle together
    std::optional<std::chrono::milliseconds> inactivity_threshold;  // the peer's own
};

// One managed peer. Every peer has one, idle or not, so it stays small (issue 6: a
// million idle peers in under 512 bytes each, kernel maps included): config that most
// peers lack is in `extra`, wake state in `wake`.
struct ManagedPeer {
    WgKey key;
    PrefixList allowed_ips;
    // The configured endpoint when numeric (len 0: none, or a host name in extra).
    SockAddr endpoint_addr;
    std::unique_ptr<PeerExtra> extra;
    std::unique_ptr<WakeState> wake;
    uint64_t idle_since_ns = 0;  // WireGuard forgot the session at this time
    uint64_t agent_dropped = 0;  // dropped in user space: over the limit, failures, backoff
    uint32_t id = 0;
    uint32_t wakes = 0;
    float last_wake_ms = -1;  // trigger to Connected; -1: never woken
    uint16_t keepalive = 0;   // applied while Connected
    PeerState state = PeerState::Idle;
    bool in_use = false;  // false: a free id, left by a removed peer
    bool lazy = true;     // false: never-lazy, kept connected
    // Connected since its last failed wake: its wakes never wait for admission.
    bool proven = false;

    // The last wake's latency as status and trace show it: kept as a float (4 bytes per
    // peer), shown to the microsecond rather than with a float's spurious digits.
    double shown_wake_ms() const {
        if (last_wake_ms < 0) return -1;
        return std::round(static_cast<double>(last_wake_ms) * 1000.0) / 1000.0;
    }
    // Reads see a default WakeState when there is none.
    const WakeState& w() const { return wake ? *wake : kNoWake; }
    WakeState& w_mut() {
        if (!wake) wake = std::make_unique<WakeState>();
        return *wake;
    }
    bool has_endpoint() const {
        return endpoint_addr.len != 0 || (extra && !extra->endpoint_host.empty());
    }
    // "host:port" as configured (numeric ones in their canonical form).
    std::optional<std::string> endpoint_opt() const {
        if (endpoint_addr.len) return endpoint_addr.str();
        if (extra && !extra->endpoint_host.empty()) return extra->endpoint_host;
        return std::nullopt;
    }
    const std::optional<std::string>& connector_spec() const {
        return extra ? extra->connector_spec : kNoString;
    }
    const std::vector<std::string>& groups() const { return extra ? extra->groups : kNoGroups; }
    std::optional<WgKey> preshared_key() const {
        return extra ? extra->preshared_key : std::nullopt;
    }
    std::optional<std::chrono::milliseconds> own_threshold() const {
        return extra ? extra->inactivity_threshold : std::nullopt;
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
