#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <ostream>

#include "base/time.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

// A duration option (10s, 500ms, ...), its default shown in --help.
void add_duration_option(CLI::App* cmd, const std::string& name, std::string& value,
                         const std::string& help) {
    cmd->add_option(name, value, help)->check(duration_validator())->capture_default_str();
}

}  // namespace

EnvLookup process_env() {
    return [](const char* name) -> std::optional<std::string> {
        const char* v = std::getenv(name);
        if (!v) return std::nullopt;
        return std::string(v);
    };
}

bool resolve_lazy(const std::optional<std::string>& flag, const EnvLookup& env) {
    if (flag) {
        auto v = parse_switch(*flag);
        if (!v) throw UsageError("--lazy-conn: " + expected_one_of(kSwitchNames, *flag));
        return *v;
    }
    if (auto e = env("NB_LAZY_CONN"); e && !e->empty()) {
        auto v = parse_switch(*e);
        if (!v) {
            throw UsageError("NB_LAZY_CONN=\"" + *e +
                             "\" is not valid: " + expected_one_of(kSwitchNames, *e));
        }
        return *v;
    }
    if (auto e = env("NB_ENABLE_EXPERIMENTAL_LAZY_CONN"); e && !e->empty()) {
        std::string lower;
        for (char c : *e)
            lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        // The legacy variable only ever took true/false.
        if (lower != "true" && lower != "false") {
            throw UsageError("NB_ENABLE_EXPERIMENTAL_LAZY_CONN=\"" + *e +
                             "\" is not valid (expected true or false)");
        }
        return lower == "true";
    }
    return true;
}

std::chrono::milliseconds resolve_inactivity_threshold(const std::optional<std::string>& flag,
                                                       const EnvLookup& env) {
    if (flag) return parse_inactivity_threshold(*flag);
    constexpr const char* kVar = "NB_LAZY_CONN_INACTIVITY_THRESHOLD";
    if (auto e = env(kVar); e && !e->empty()) {
        try {
            return parse_inactivity_threshold(*e);
        } catch (const UsageError& err) {
            throw UsageError(std::string(kVar) + "=\"" + *e + "\" is not valid: " + err.what());
        }
    }
    return run_defaults().inactivity_threshold;
}

// What the agent tells about itself: its rings for debug bundles, metrics and log level.
static void add_observability_options(CLI::App& run, RunArgs& a) {
    run.add_option("--trace-ring", a.trace_ring,
                   "Trace events kept for debug bundles (about 150 bytes each); 0: none")
        ->check(CLI::Range(0u, 10000000u))
        ->capture_default_str();
    run.add_option("--log-ring", a.log_ring, "Log lines kept for debug bundles; 0: none")
        ->check(CLI::Range(0u, 1000000u))
        ->capture_default_str();
    run.add_option("--metrics-listen", a.metrics_listen,
                   "Serve Prometheus metrics at http://ADDR:PORT/metrics, e.g. "
                   "127.0.0.1:9590 ([::1]:9590 for IPv6; off by default). They show counts, "
                   "no keys and no addresses of peers; bind it to a local address")
        ->check(listen_validator());
    run.add_option("--log-level", a.log_level, "Log level")
        ->check(enum_validator<LogLevel>())
        ->capture_default_str();
}

CLI::App* add_run_command(CLI::App& app, RunArgs& a) {
    CLI::App* run = app.add_subcommand(
        "run", "Run the agent on a WireGuard interface (root, or the capabilities in nbagent(8))");
    run->add_option("-i,--interface", a.interface, "WireGuard interface")->required();
    run->add_option("-c,--config", a.config,
                    "wg-quick style config to apply (default: adopt the interface)")
        ->check(CLI::ExistingFile);
    run->add_option("--wg", a.wg, "WireGuard backend")
        ->check(enum_validator<WgMode>())
        ->capture_default_str();
    run->add_option("--lazy-conn", a.lazy_conn,
                    "Lazy connections on or off (default: NB_LAZY_CONN, then "
                    "NB_ENABLE_EXPERIMENTAL_LAZY_CONN, then on)")
        ->check(switch_validator());
    run->add_option("--max-held-packets", a.max_held_packets,
                    "Packets held per idle peer while it wakes")
        ->check(CLI::Range(1, 4096))
        ->capture_default_str();
    add_duration_option(run, "--connect-timeout", a.connect_timeout,
                        "Give up waking a peer after this long");
    add_duration_option(run, "--connect-backoff", a.connect_backoff,
                        "No new wake for this long after a failed one, doubling with each failure "
                        "in a row (at most 5m)");
    run->add_option("--wake-rate", a.wake_rate,
                    "Wakes per second of peers that have not completed a handshake since their "
                    "last failed wake; more wait their turn (a few seconds' worth), so a sweep "
                    "of idle peers' addresses cannot bury a real peer's handshake. 0: no limit")
        ->check(CLI::Range(0u, 1000000u))
        ->capture_default_str();
    run->add_option("--inactivity-threshold", a.inactivity_threshold,
                    "Send a connected peer back to Idle after this long without traffic; a "
                    "bare number is minutes, at least 10s (default: "
                    "NB_LAZY_CONN_INACTIVITY_THRESHOLD, then 15m)")
        ->check(inactivity_validator());
    run->add_option("--max-peers", a.max_peers,
                    "Datapath capacity in peers (default: sized from the first network map "
                    "with headroom); later network maps (apply, SIGHUP) must fit it")
        ->check(CLI::Range(1u, 16777216u));
    run->add_option("--ring-buffer-kib", a.ring_buffer_kib,
                    "Size of the BPF ring buffer that carries held packets to the agent, in "
                    "KiB (rounded up to a power of two); when it overflows, the marked peers "
                    "are woken anyway and only the packets that did not fit are lost")
        ->check(CLI::Range(4u, 1048576u))
        ->capture_default_str();
    run->add_option("--udp-forward-handshake", a.udp_forward_handshake,
                    "UDP engine: send the handshake initiation a listener caught on to the "
                    "real endpoint, so the first packet needs no WireGuard retry; off waits "
                    "for the retry (5 s), as NetBird's listeners do: for comparison only")
        ->check(switch_validator())
        ->capture_default_str();
    add_duration_option(run, "--exec-timeout", a.exec_timeout, "Limit for a connector command");
    add_duration_option(run, "--wg-timeout", a.wg_timeout,
                        "wireguard-go: wait this long for an answer before WireGuard counts as "
                        "not answering (requests then fail at once until it answers again); raise "
                        "it if a dump of a very large device takes longer");
    run->add_option("--run-dir", a.run_dir, "Directory of the control socket")
        ->capture_default_str();
    run->add_option("--trigger", a.trigger,
                    "How idle peers' first packets are noticed: bpf (tc programs), udp (a "
                    "loopback listener per idle peer), or auto (bpf when this kernel can)")
        ->check(enum_validator<TriggerMode>())
        ->capture_default_str();
    run->add_option("--attach", a.attach, "How to attach the tc program")
        ->check(enum_validator<AttachMode>())
        ->capture_default_str();
    add_observability_options(*run, a);
    add_fleet_options(*run, a);
    run->add_option("--settings", a.settings,
                    "Settings file: lines 'option = value' for run's options without the "
                    "leading -- (default: /etc/nbagent/IFACE.conf when it exists). Flags and "
                    "env win over it; SIGHUP reads it again")
        ->check(CLI::ExistingFile);
    run->add_flag("--print-settings", a.print_settings,
                  "Print each option's value and where it came from (flag, env, file, "
                  "default), then exit without running");
    return run;
}

RunOptions to_run_options(const RunArgs& a, const EnvLookup& env) {
    RunOptions o;
    o.interface = a.interface;
    o.config_path = a.config;
    o.wg_mode = parse_option<WgMode>("--wg", a.wg);
    o.lazy = resolve_lazy(a.lazy_conn, env);
    o.max_held_packets = a.max_held_packets;
    o.connect_timeout = parse_duration(a.connect_timeout);
    o.connect_backoff = parse_duration(a.connect_backoff);
    o.wake_rate = a.wake_rate;
    o.inactivity_threshold = resolve_inactivity_threshold(a.inactivity_threshold, env);
    o.max_peers = a.max_peers;
    o.ring_buffer_bytes = a.ring_buffer_kib * 1024u;
    const auto forward = parse_switch(a.udp_forward_handshake);
    if (!forward)
        throw UsageError("--udp-forward-handshake: " +
                         expected_one_of(kSwitchNames, a.udp_forward_handshake));
    o.udp_forward_handshake = *forward;
    o.exec_timeout = parse_duration(a.exec_timeout);
    o.wg_timeout = parse_duration(a.wg_timeout);
    o.run_dir = a.run_dir;
    o.attach_mode = parse_option<AttachMode>("--attach", a.attach);
    o.trigger = parse_option<TriggerMode>("--trigger", a.trigger);
    o.log_level = parse_option<LogLevel>("--log-level", a.log_level);
    o.trace_ring = a.trace_ring;
    o.log_ring = a.log_ring;
    if (a.metrics_listen) o.metrics_listen = parse_listen_address(*a.metrics_listen);
    o.fleet = to_fleet_options(a);
    return o;
}

std::vector<Setting> effective_settings(const CLI::App& run, const RunOptions& opts,
                                        const EnvLookup& env,
                                        const std::map<std::string, std::string>& from_file) {
    std::vector<Setting> out;
    for (const CLI::Option* o : run.get_options()) {
        const std::string name = o->get_name();
        if (name.rfind("--", 0) != 0 || name == "--help" || name == "--print-settings") continue;
        std::string value = o->count() ? o->as<std::string>() : o->get_default_str();
        std::string source = o->count() ? "flag" : "default";
        if (auto f = from_file.find(name); f != from_file.end()) {
            source = f->second;
        } else if (auto e = env_source(name, env); e && !o->count()) {
            value = *env(e->c_str() + 4);  // "env NAME"
            source = *e;
        }
        out.push_back({name, value.empty() ? "(auto)" : value, source});
    }
    // What the two took effect as, whatever their source said.
    for (Setting& s : out) {
        if (s.name == "--lazy-conn") s.value = switch_name(opts.lazy);
        if (s.name == "--inactivity-threshold")
            s.value = format_duration(opts.inactivity_threshold);
    }
    return out;
}

void print_settings(const std::vector<Setting>& settings, std::ostream& out) {
    size_t name_w = 0, value_w = 0;
    for (const Setting& s : settings) {
        name_w = std::max(name_w, s.name.size());
        value_w = std::max(value_w, s.value.size());
    }
    for (const Setting& s : settings) {
        std::string line = s.name;
        line.append(name_w + 2 - s.name.size(), ' ').append(s.value);
        line.append(value_w + 2 - s.value.size(), ' ').append(s.source).append("\n");
        out << line;
    }
}

}  // namespace nb::cli
