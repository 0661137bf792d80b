#include "agent/control/status_map.hpp"

#include <utility>

namespace nb {

AgentStatus agent_status(const std::string& interface, LazyStatus lazy) {
    AgentStatus s;
    s.interface = interface;
    s.lazy = lazy.lazy;
    s.inactivity_threshold_ms = lazy.inactivity_threshold_ms;
    s.idle = lazy.idle;
    s.connecting = lazy.connecting;
    s.connected = lazy.connected;
    s.lost_reports = lazy.lost_reports;
    s.lost_recovered = lazy.lost_recovered;
    s.wakes_queued = lazy.wakes_queued;
    s.wakes_deferred = lazy.wakes_deferred;
    s.wakes_shed = lazy.wakes_shed;
    s.peers = std::move(lazy.peers);
    return s;
}

DatapathOrderStatus order_status(const TcOrder& order) {
    DatapathOrderStatus s;
    s.checked = order.checked;
    s.error = order.error;
    for (const auto& p : order.ahead) {
        ProgramAheadStatus w;
        w.direction = to_string(p.direction);
        w.hook = p.tcx ? AttachMode::Tcx : AttachMode::Clsact;
        w.id = p.prog_id;
        w.name = p.name;
        w.priority = p.priority;
        w.handle = p.handle;
        s.ahead.push_back(std::move(w));
    }
    return s;
}

}  // namespace nb
