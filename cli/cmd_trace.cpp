#include <cstdio>
#include <iostream>

#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

// A field as text: strings as they are, other values as JSON, "?" when absent, so a
// newer agent's events still print.
std::string field(const nlohmann::json& e, const char* key) {
    auto it = e.find(key);
    if (it == e.end()) return "?";
    return it->is_string() ? it->get<std::string>() : it->dump();
}

// "2024-05-01T14:02:03.123Z" -> "14:02:03.123" (the date is noise in a live trace).
std::string clock_part(const std::string& ts) {
    const auto t = ts.find('T');
    if (t == std::string::npos) return ts;
    const auto zone = ts.find_first_of("Z+-", t + 1);
    return ts.substr(t + 1, zone == std::string::npos ? std::string::npos : zone - t - 1);
}

std::string host_port(const nlohmann::json& e, const char* addr_key, const char* port_key) {
    std::string addr = field(e, addr_key);
    if (!e.contains(port_key)) return addr;
    if (addr.find(':') != std::string::npos) addr = "[" + addr + "]";
    return addr + ":" + field(e, port_key);
}

std::string label(const std::string& name) {
    std::string l = name;
    if (l.size() < 9) l.append(9 - l.size(), ' ');
    return l;
}

}  // namespace

std::string format_trace_event(const nlohmann::json& e) {
    if (!e.is_object()) return e.dump();
    const std::string time = e.contains("ts") ? clock_part(field(e, "ts")) : "-";
    const std::string kind = field(e, "event");
    if (kind == "trigger") {
        return time + " " + label("trigger") + " " + field(e, "peer") + " " + field(e, "proto") +
               " " + host_port(e, "src", "sport") + " -> " + host_port(e, "dst", "dport");
    }
    if (kind == "transition") {
        std::string line = time + " " + label("state") + " " + field(e, "peer") + " " +
                           field(e, "from") + " -> " + field(e, "to");
        auto lat = e.find("latency_ms");
        if (lat != e.end() && lat->is_number()) {
            char buf[32];
            std::snprintf(buf, sizeof buf, " (%.1f ms)", lat->get<double>());
            line += buf;
        } else if (e.contains("reason")) {
            line += " (" + field(e, "reason") + ")";
        }
        return line;
    }
    nlohmann::json rest = e;
    rest.erase("ts");
    rest.erase("event");
    return time + " " + label(kind) + " " + rest.dump();
}

CLI::App* add_trace_command(CLI::App& app, TraceArgs& a) {
    CLI::App* peers = add_grouped_command(app, "trace", "Follow the agent's events live", "peers",
                                          "Trigger packets and peer state changes");
    peers->add_flag("--json", a.json, "One JSON object per event");
    peers->add_option("--count", a.count, "Stop after N events")->check(CLI::PositiveNumber);
    add_socket_options(*peers, a.interface, a.run_dir);
    return peers;
}

int run_trace(const TraceArgs& a, std::ostream& out) {
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    uint64_t seen = 0;
    client.stream(
        to_json(TraceRequest{}),
        [&](const nlohmann::json& event) {
            // Flushed per line: someone is watching this live, or piping it to a filter.
            out << (a.json ? event.dump() : format_trace_event(event)) << std::endl;
            return !a.count || ++seen < *a.count;
        },
        // On stderr, so stdout stays pure events; scripts wait for it before acting.
        [] { std::cerr << "nbagent: tracing peers (interrupt to stop)" << std::endl; });
    return 0;
}

}  // namespace nb::cli
