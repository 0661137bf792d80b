// How long each phase of a wake takes, and the way back to Idle: histograms on the
// manager's clock (LazyOptions::clock), for `nbagent debug bundle`.
//
// A wake the agent starts goes: trigger seen -> connector answered -> endpoint set
// (WireGuard has it) -> replay sent (held packets re-injected, the slot lets replays
// through) -> first reply (the remote answered, or WireGuard's handshake time proved
// it: Connected). Each arrow is a phase of its own; `total` is the whole of it. A wake
// that skips a phase (the remote answered before the connector did; eager mode without
// programs) counts in the phases it had, and in total. Wakes the remote started (its
// handshake reached an Idle peer) take no time of ours and count nowhere here.
#pragma once

#include <string>

#include "base/latency_histogram.hpp"

namespace nb {

struct WakePhases {
    // The trigger (the waking packet's CLOCK_MONOTONIC stamp, or the moment a queued wake
    // was admitted) to the connector's answer with an endpoint, as the loop took it in.
    HistogramSnapshot connector;
    // The connector's answer to WireGuard having the endpoint: WireGuard's set request
    // (one for a batch of answers), plus any wait for the loop.
    HistogramSnapshot endpoint;
    // The endpoint set to the held packets re-injected (slot in Confirm, the UDP engine's
    // captured initiation forwarded).
    HistogramSnapshot replay;
    // The replay to Connected: the handshake's round trip and the first reply's report,
    // or the handshake poll that proved it.
    HistogramSnapshot first_reply;
    // The trigger to Connected, for every wake the agent started.
    HistogramSnapshot total;
    // The trigger to the wake given up (connector failed, no answer or no handshake in
    // time, WireGuard refused the endpoint).
    HistogramSnapshot failed;
    // One batch of peers made Idle (inactivity, failures, an operator's request): the
    // datapath told to hold and WireGuard's request (remove and re-add, or keepalives
    // off when sessions are kept). One record per batch, not per peer.
    HistogramSnapshot going_idle;
    // How long each peer was Connected when it went back to Idle.
    HistogramSnapshot connected_for;
};

// A line per histogram, as render_histogram writes it: "wake connector", "wake endpoint",
// "wake replay", "wake first-reply", "wake total", "wake failed", "idle going-idle",
// "idle connected-for".
std::string render_wake_phases(const WakePhases& w);

// The manager's own (single-threaded) histograms behind WakePhases.
struct WakePhaseHistograms {
    LatencyHistogram connector, endpoint, replay, first_reply, total, failed, going_idle,
        connected_for;
    WakePhases snapshot() const;
};

// b - a, 0 when b is earlier (a stamp from another clock, or a test's clock moved back).
inline uint64_t elapsed_ns(uint64_t a, uint64_t b) {
    return b > a ? b - a : 0;
}

}  // namespace nb
