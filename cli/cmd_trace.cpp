#include <cstdio>
#include <iostream>

#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "agent/control/trace_filter.hpp"
#include "base/time.hpp"
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
        std::string line = time + " " + label("state") + " " + field(e, "peer");
        if (e.contains("ip")) line += " " + field(e, "ip");
        line += " " + field(e, "from") + " -> " + field(e, "to");
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
    CLI::App* peers = add_grouped_command(
        app, "trace", "Follow the agent's events live, or show the ones it kept", "peers",
        "Trigger packets, drops and peer state changes");
    peers
        ->add_option("-o,--output", a.output,
                     "compact (one line an event) or json (an object a line)")
        ->check(enum_validator<TraceOutput>())
        ->capture_default_str();
    peers->add_flag("--json", a.json, "The same as -o json");
    peers->add_option("--count", a.count, "Stop after N events")->check(CLI::PositiveNumber);
    peers->add_option("--peer", a.peer, "Only this peer's events (its key, or the key's start)");
    peers->add_option("--ip", a.ip, "Only the events of the peer whose allowed IPs route ADDR")
        ->check(ip_validator());
    peers
        ->add_option("--event", a.events,
                     "Only these kinds: trigger, drop, state (transition), overrun, mode; "
                     "repeat or separate with commas")
        ->delimiter(',')
        ->check(CLI::IsMember({"trigger", "drop", "state", "transition", "overrun", "mode"}));
    peers->add_flag("--failures", a.failures,
                    "Only failures: drops, and state changes with an error");
    peers
        ->add_option("--last", a.last,
                     "First the last N matching events the agent kept (--trace-ring), then exit")
        ->check(CLI::PositiveNumber);
    peers
        ->add_option("--since", a.since,
                     "First the kept events of the last DURATION (e.g. 10m), then exit")
        ->check(throwing_validator<std::invalid_argument>(
            [](const std::string& text) { parse_duration(text); }, "DURATION"));
    peers->add_flag("-f,--follow", a.follow, "With --last or --since: then follow live events");
    add_socket_options(*peers, a.interface, a.run_dir);
    return peers;
}

namespace {

TraceRequest trace_request(const TraceArgs& a) {
    TraceRequest req;
    if (a.peer) req.filter.key_prefix = *a.peer;
    if (a.ip) req.filter.ip = IpAddr::parse(*a.ip);  // checked by ip_validator
    for (const auto& e : a.events) req.filter.events.push_back(e == "state" ? "transition" : e);
    req.filter.failures = a.failures;
    req.last = a.last;
    if (a.since) req.since_ms = unix_ms() - parse_duration(*a.since).count();
    req.follow = (!a.last && !a.since) || a.follow;
    return req;
}

}  // namespace

int run_trace(const TraceArgs& a, std::ostream& out) {
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    const TraceRequest req = trace_request(a);
    const bool json = a.json || parse_option<TraceOutput>("-o", a.output) == TraceOutput::Json;
    uint64_t seen = 0;
    std::string ip_key;
    // Flushed per line: someone is watching this live, or piping it to a filter.
    auto print = [&](const nlohmann::json& event) {
        out << (json ? event.dump() : format_trace_event(event)) << std::endl;
        return !a.count || ++seen < *a.count;
    };
    bool more = true;
    auto kept = [&](const nlohmann::json& reply) {
        if (auto k = reply.find("peer"); k != reply.end() && k->is_string()) ip_key = *k;
        if (auto ev = reply.find("events"); ev != reply.end() && ev->is_array())
            for (const auto& e : *ev)
                if (more) more = print(e);
    };
    if (!req.follow) {
        kept(client.request(to_json(ControlRequest{req})));
        return 0;
    }
    client.stream(
        to_json(ControlRequest{req}),
        [&](const nlohmann::json& event) {
            if (!more) return false;  // --count reached among the kept events
            if (!trace_matches(req.filter, ip_key, event)) return true;
            return print(event);
        },
        [&](const nlohmann::json& reply) {
            kept(reply);
            // On stderr, so stdout stays pure events; scripts wait for it before acting.
            std::cerr << "nbagent: tracing peers (interrupt to stop)" << std::endl;
        });
    return 0;
}

}  // namespace nb::cli
