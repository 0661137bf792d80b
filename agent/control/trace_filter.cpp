#include "agent/control/trace_filter.hpp"

#include <algorithm>

namespace nb {

bool trace_matches(const TraceFilter& f, const std::string& ip_key, const nlohmann::json& ev) {
    if (!ev.is_object()) return false;
    const std::string event = ev.value("event", "");
    if (!f.events.empty() && std::find(f.events.begin(), f.events.end(), event) == f.events.end())
        return false;
    if (f.failures) {
        const bool failed = event == "drop" || (event == "transition" && ev.contains("error"));
        if (!failed) return false;
    }
    if (f.key_prefix.empty() && !f.ip) return true;
    // A peer filter leaves out events of no peer (overruns, mode changes).
    const std::string peer = ev.value("peer", "");
    if (peer.empty()) return false;
    if (!f.key_prefix.empty() && peer.compare(0, f.key_prefix.size(), f.key_prefix) != 0)
        return false;
    return !f.ip || peer == ip_key;
}

}  // namespace nb
