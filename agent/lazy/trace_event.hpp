// What the lazy manager tells `nbagent trace`, as typed events. The manager only says
// what happened; agent/control/trace_json.hpp puts it into the wire's words, and only
// for a trace someone reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "agent/lazy/state.hpp"
#include "agent/wg/key.hpp"
#include "base/net/ip.hpp"
#include "base/net/packet_summary.hpp"

namespace nb {

// An Idle peer's wake starts.
struct TriggerEvent {
    enum class Cause {
        Packet,      // a held packet (`packet`: its summary, when the bytes are IP)
        Handshake,   // WireGuard sent a handshake initiation to its UDP listener
        LostReport,  // the ring buffer lost the report; the program's mark remained
        Queued,      // its wake waited for admission, and its turn came
    };
    WgKey peer;
    Cause cause = Cause::Packet;
    std::optional<PacketSummary> packet;
};

// A packet of an Idle peer dropped instead of waking it.
struct DropEvent {
    enum class Reason {
        WireGuard,  // WireGuard is not answering or gone (`error` says why)
        Backoff,    // failed wakes: no new one before `retry_in_ms` (`error`: the last)
        QueueFull,  // the admission queue is full (`queued` wakes wait)
    };
    WgKey peer;
    Reason reason = Reason::Backoff;
    std::string error;
    uint64_t retry_in_ms = 0;
    uint64_t queued = 0;
};

struct TransitionEvent {
    WgKey peer;
    PeerState from = PeerState::Idle, to = PeerState::Idle;
    std::string reason;
    std::optional<double> latency_ms;  // to Connected after a wake: trigger to proof
    std::string error;                 // to Idle after a failure: why
    std::optional<IpPrefix> ip;        // the peer's first allowed IP, to tell peers apart
};

// The ring buffer overflowed: `lost` reports, `recovered` peers woken from marks.
struct OverrunEvent {
    uint64_t lost = 0, recovered = 0;
};

// Lazy mode turned on or off at runtime.
struct ModeEvent {
    bool lazy = true;
};

using TraceEvent = std::variant<TriggerEvent, DropEvent, TransitionEvent, OverrunEvent, ModeEvent>;

}  // namespace nb
