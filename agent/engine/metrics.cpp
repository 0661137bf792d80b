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
    s.wireguard_up = wg_->available();
    s.start_time_s = start_time_s_;
    // Without detail the manager's status is O(1): counts (kept as peers change) and
    // settings.
    s.status = mgr_->status(false);
    s.counters = mgr_->counters();
    if (activity_) s.ring_reports = activity_->records();
    s.time_to_connected = mgr_->time_to_connected();
    const ConnectPool::Stats pool = pool_->stats();
    s.pool = {pool.threads, pool.busy, pool.queued};
    s.maps = maps_;
    return s;
}

}  // namespace nb::engine
