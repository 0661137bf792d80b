// What one scrape of /metrics shows of the agent: counts and histograms the event loop
// copies out in O(1) (nothing here grows with the number of peers), so that the HTTP
// thread renders them without touching the manager.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "agent/activity/trigger_mode.hpp"
#include "agent/lazy/lazy_counters.hpp"
#include "agent/lazy/peer_status.hpp"
#include "agent/wg/wg_backend.hpp"
#include "base/latency_histogram.hpp"
#include "loader/tc_attach.hpp"

namespace nb {

// Network maps applied (apply requests and SIGHUP), and what they changed.
struct MapUpdateCounters {
    uint64_t applied = 0, reloaded = 0;  // by `nbagent apply`, by SIGHUP
    uint64_t failed = 0;                 // refused (a bad config, WireGuard said no)
    uint64_t added = 0, removed = 0, changed = 0;
    LatencyHistogram duration;  // each applied map, from request to routes in place
};

// The connector pool's workers now.
struct ConnectorPoolStats {
    uint64_t threads = 0, busy = 0, queued = 0;
};

struct MetricsSnapshot {
    // Labels of nbagent_info, and the interface label of every series.
    std::string interface, version;
    WgBackend wg_backend = WgBackend::Kernel;
    std::optional<TriggerEngine> trigger;  // none: "" (eager mode)
    std::optional<AttachMode> attach_mode;
    bool wireguard_up = true;  // answering (always, where the agent does not watch it)
    LazyStatus status;         // the manager's counts and settings, without peers
    LazyCounters counters;
    uint64_t ring_reports = 0;
    HistogramSnapshot time_to_connected;  // trigger to Connected, for wakes the agent started
    ConnectorPoolStats pool;
    MapUpdateCounters maps;
    double start_time_s = 0;  // unix time the agent started
};

}  // namespace nb
