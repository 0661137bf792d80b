// What the lazy manager counts of itself since it began, by kind: wakes by what started
// them, failed wakes by cause, packets, and the way back to Idle. Plain counters on the
// event loop; the metrics endpoint maps them to its series (agent/metrics/).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "base/enum_names.hpp"

namespace nb {

// What started a wake.
enum class WakeReason {
    Packet,     // our traffic to an Idle peer (held packet, UDP trigger, lost report)
    Remote,     // the remote's handshake reached an Idle peer
    Group,      // a member of one of its groups woke
    LazyOff,    // lazy mode is off: every peer is kept connected
    NeverLazy,  // the peer is never lazy (Lazy = off)
    Operator,   // `nbagent peer wake`
};
inline constexpr EnumName<WakeReason> kWakeReasonNames[] = {
    {WakeReason::Packet, "packet"},        {WakeReason::Remote, "remote"},
    {WakeReason::Group, "group"},          {WakeReason::LazyOff, "lazy_off"},
    {WakeReason::NeverLazy, "never_lazy"}, {WakeReason::Operator, "operator"},
};

// Why a wake failed.
enum class WakeFailure {
    Connector,         // the connector answered with an error or no endpoint
    ConnectorTimeout,  // the connector gave no answer within --connect-timeout
    HandshakeTimeout,  // the endpoint was set, but no handshake within --connect-timeout
    WireGuard,         // WireGuard refused the endpoint
};
inline constexpr EnumName<WakeFailure> kWakeFailureNames[] = {
    {WakeFailure::Connector, "connector"},
    {WakeFailure::ConnectorTimeout, "connector_timeout"},
    {WakeFailure::HandshakeTimeout, "handshake_timeout"},
    {WakeFailure::WireGuard, "wireguard"},
};

// Why a Connected or Connecting peer went back to Idle, other than a failed wake.
enum class IdleReason {
    Inactivity,  // no traffic for the inactivity threshold
    Operator,    // `nbagent peer idle`
};
inline constexpr EnumName<IdleReason> kIdleReasonNames[] = {
    {IdleReason::Inactivity, "inactivity"},
    {IdleReason::Operator, "operator"},
};

template <typename E, size_t N>
constexpr size_t enum_count(const EnumName<E> (&)[N]) {
    return N;
}

struct LazyCounters {
    std::array<uint64_t, enum_count(kWakeReasonNames)> wakes{};
    std::array<uint64_t, enum_count(kWakeFailureNames)> failures{};
    std::array<uint64_t, enum_count(kIdleReasonNames)> idles{};
    // Packets of Idle and Connecting peers handed to the agent, re-injected after the
    // endpoint was set, and dropped in user space (over the hold limit, backing off,
    // WireGuard not answering, a failed wake). Packets the datapath dropped on its own
    // (while muted) are in each peer's status, not here: summing them is O(peers).
    uint64_t packets_held = 0, packets_replayed = 0, packets_dropped = 0;

    uint64_t& wake(WakeReason r) { return wakes[static_cast<size_t>(r)]; }
    uint64_t& failure(WakeFailure f) { return failures[static_cast<size_t>(f)]; }
    uint64_t& idle(IdleReason r) { return idles[static_cast<size_t>(r)]; }
};

}  // namespace nb
