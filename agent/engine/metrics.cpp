// What a scrape of /metrics shows: the manager's counts and the engine's, copied out on
// the event loop in O(1); agent/metrics/ renders and serves them off the loop.
#include "agent/engine/agent.hpp"
#include "base/build_info.hpp"

namespace nb::engine {

MetricsSnapshot Agent::metrics_snapshot() const {
    MetricsSnapshot s;
    s.interface = opts_.interface;
    s.version = std::string(build_info().version);
    s.wg_backend = base_status_.wg_backend;
    s.trigger = base_status_.trigger;
    s.attach_mode = base_status_.attach_mode;
    s.lazy = mgr_->lazy();
    s.wireguard_up = wg_->available();
    s.start_time_s = start_time_s_;
    for (PeerState st : {PeerState::Idle, PeerState::Connecting, PeerState::Connected})
        s.peers[static_cast<size_t>(st)] = mgr_->count(st);
    s.counters = mgr_->counters();
    // The manager's status without detail is O(1) as well: counts and settings.
    const LazyStatus ls = mgr_->status(false);
    s.inactivity_threshold_ms = ls.inactivity_threshold_ms;
    s.lost_reports = ls.lost_reports;
    s.lost_recovered = ls.lost_recovered;
    s.wakes_queued = ls.wakes_queued;
    s.wakes_deferred = ls.wakes_deferred;
    s.wakes_shed = ls.wakes_shed;
    if (activity_) s.ring_reports = activity_->records();
    s.time_to_connected = mgr_->wake_phases().total;
    const ConnectPool::Stats pool = pool_->stats();
    s.pool = {pool.threads, pool.busy, pool.queued};
    s.maps = maps_;
    return s;
}

}  // namespace nb::engine
