// What the loop hands to a debug bundle's writer: settings, the datapath's objects and
// slots, the wake phases, and the CPU profile's start and stop.
#include <unistd.h>

#include <set>
#include <sstream>

#include "agent/debug/resources.hpp"
#include "agent/engine/agent.hpp"
#include "agent/lazy/wake_phases.hpp"
#include "base/time.hpp"
#include "loader/bpf_report.hpp"

namespace nb::engine {

namespace {

const char* slot_state_name(uint32_t s) {
    switch (s) {
        case NB_SLOT_UNUSED:
            return "unused";
        case NB_SLOT_HOLD:
            return "hold";
        case NB_SLOT_PASS:
            return "pass";
        case NB_SLOT_PASS_CONFIRM:
            return "pass_confirm";
        default:
            return "?";
    }
}

}  // namespace

nlohmann::json Agent::debug_settings() const {
    nlohmann::json settings = nlohmann::json::array();
    for (const Setting& s : opts_.settings)
        settings.push_back({{"name", s.name}, {"value", s.value}, {"source", s.source}});
    return {{"pid", ::getpid()},
            {"interface", opts_.interface},
            {"command_line", opts_.command_line},
            {"settings", settings},
            {"wireguard", to_string(base_status_.wg_backend)},
            {"trigger", to_string(base_status_.trigger)},
            {"trigger_reason", base_status_.trigger_reason},
            {"attach_mode", to_string(base_status_.attach_mode)},
            {"trace_ring",
             {{"capacity", trace_ring_.capacity()},
              {"kept", trace_ring_.size()},
              {"overwritten", trace_ring_.overwritten()}}},
            {"log_ring", {{"capacity", opts_.log_ring}}},
            {"taken", rfc3339_now()}};
}

nlohmann::json Agent::debug_names() const {
    std::set<std::string> hosts, commands, groups;
    mgr_->for_each_peer([&](const ManagedPeer& p) {
        if (!p.extra) return;
        const PeerExtra& x = *p.extra;
        if (!x.endpoint_host.empty())
            hosts.insert(x.endpoint_host.substr(0, x.endpoint_host.rfind(':')));
        if (x.connector_spec && x.connector_spec->rfind("exec:", 0) == 0)
            commands.insert(x.connector_spec->substr(5));
        groups.insert(x.groups.begin(), x.groups.end());
    });
    return {{"host", hosts}, {"command", commands}, {"group", groups}};
}

std::string Agent::start_cpu_profile(const std::string& path) {
    if (!debug::CpuProfiler::available())
        return "not available: this nbagent was built without gperftools (libprofiler)";
    try {
        cpu_profiler_.start(path);
        return "running";
    } catch (const std::exception& e) {
        return std::string("not taken: ") + e.what();
    }
}

void Agent::stop_cpu_profile() {
    cpu_profiler_.stop();  // nothing if none runs
}

std::string Agent::debug_resources_text() const {
    std::string out = debug::render_resources(debug::read_resource_use());
    if (dp_) {
        uint64_t memlock = 0;
        for (const auto& [name, bytes] : dp_->map_memory()) memlock += bytes;
        out += "bpf map memlock: " + std::to_string(memlock) + " bytes\n";
    }
    out += "peer table: " + std::to_string(mgr_->table_bytes()) + " bytes for " +
           std::to_string(mgr_->size()) + " peers\n";
    out += "\n# WireGuard's slab caches\n" + debug::wireguard_slab();
    return out;
}

std::string Agent::debug_latency_text() const {
    return "# wakes: each phase from the one before it; going idle: per batch\n" +
           render_wake_phases(mgr_->wake_phases());
}

std::string Agent::debug_bpf_text() const {
    std::ostringstream o;
    if (!dp_) {
        o << "no BPF datapath: trigger "
          << (base_status_.trigger ? to_string(*base_status_.trigger) : "none");
        if (!base_status_.trigger_reason.empty()) o << " (" << base_status_.trigger_reason << ")";
        o << "\n";
        return o.str();
    }
    o << datapath_report(*dp_);
    if (activity_)
        o << "\nring reports read " << activity_->records() << ", GSO split "
          << activity_->gso_split() << ", unsplit " << activity_->gso_unsplit() << "\n";
    // Fill, from the manager's books (a walk of a million-entry hash map through bpf()
    // would hold the loop for seconds).
    uint64_t hosts = 0, prefixes = 0;
    mgr_->for_each_peer([&](const ManagedPeer& p) {
        for (const IpPrefix& a : p.allowed_ips.span()) (a.is_host() ? hosts : prefixes)++;
    });
    o << "fill: " << mgr_->size() << " of " << dp_->max_peers() << " peer slots; " << hosts
      << " host routes (dense array or nb_hosts), " << prefixes << " prefixes (nb_prefixes)\n";
    const LazyStatus st = mgr_->status(false);
    o << "lost reports " << st.lost_reports << ", recovered " << st.lost_recovered << "\n";
    o << "\n# slots of peers that are not Idle (state, pending, held, dropped, missed, "
         "last tx/rx ms ago)\n";
    const uint64_t now = monotonic_ns();
    auto ago = [&](uint64_t jiffies) -> std::string {
        if (!jiffies) return "never";
        const uint64_t t = dp_->jiffies_to_ns(jiffies);
        return t > now ? "0" : std::to_string((now - t) / 1'000'000);
    };
    mgr_->for_each_peer([&](const ManagedPeer& p) {
        if (p.state == PeerState::Idle) return;
        const nb_peer_slot& s = dp_->slot(p.id);
        o << "id " << p.id << " " << p.key.base64() << " " << to_string(p.state) << " slot "
          << slot_state_name(s.state) << " pending " << s.pending << " held " << s.held
          << " dropped " << s.dropped << " missed " << s.missed << " tx " << ago(s.last_tx_jiffies)
          << " rx " << ago(s.last_rx_jiffies) << "\n";
    });
    return o.str();
}

}  // namespace nb::engine
