#include <unistd.h>

#include <iostream>

#include <spdlog/spdlog.h>

#include "base/build_info.hpp"
#include "base/capabilities.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

// Root has them all; a unit with User= gets them from AmbientCapabilities=.
// NB_CAPABILITY_CHECK=off skips the check: to find out which of them a kernel really
// needs (tests/integration/capabilities.sh), not for running a service.
bool has_capabilities(const RunOptions& opts, const EnvLookup& env) {
    if (auto v = env("NB_CAPABILITY_CHECK"); v && parse_switch(*v) == false) return true;
    // WireGuard, tc, links and routes; packet sockets to re-inject held packets (and the
    // UDP engine's raw socket that forwards initiations).
    std::vector<std::string> need = {"CAP_NET_ADMIN", "CAP_NET_RAW"};
    // The tc programs and their maps (--trigger udp loads none). Without CAP_PERFMON the
    // verifier refuses their packet pointer arithmetic ("prohibited for !root").
    if (opts.trigger != TriggerMode::Udp) {
        if (kernel_has_cap_bpf()) {
            need.push_back("CAP_BPF");
            need.push_back("CAP_PERFMON");
        } else {
            need.push_back("CAP_SYS_ADMIN");
        }
    }
    const std::vector<std::string> missing = missing_capabilities(need);
    if (missing.empty()) return true;
    auto list = [](const std::vector<std::string>& v) {
        std::string out;
        for (size_t i = 0; i < v.size(); ++i) {
            if (i) out.append(i + 1 == v.size() ? " and " : ", ");
            out.append(v[i]);
        }
        return out;
    };
    std::cerr << "nbagent run needs root, or the capabilities " << list(need)
              << "; missing: " << list(missing) << " (docs/config.md, \"Running without root\")\n";
    return false;
}

}  // namespace

int run_cli(int argc, const char* const* argv,
            const std::function<int(const RunOptions&)>& run_agent, const EnvLookup& env) {
    CLI::App app{"nbagent: lazy WireGuard peers", "nbagent"};
    app.require_subcommand(1);
    // CLI11 handles it before checking for a subcommand, so `nbagent --version` alone works.
    app.set_version_flag("--version", "nbagent " + std::string(build_info().version));
    RunArgs run_args;
    StatusArgs status_args;
    TraceArgs trace_args;
    PeerArgs peer_args;
    ApplyArgs apply_args;
    SetArgs set_args;
    FeaturesArgs features_args;
    VersionArgs version_args;
    DebugArgs debug_args;
    CLI::App* run = add_run_command(app, run_args);
    CLI::App* status = add_status_command(app, status_args);
    CLI::App* trace_peers = add_trace_command(app, trace_args);
    const PeerCommands peer = add_peer_command(app, peer_args);
    CLI::App* apply = add_apply_command(app, apply_args);
    const SetCommands set = add_set_command(app, set_args);
    CLI::App* features = add_features_command(app, features_args);
    CLI::App* version = add_version_command(app, version_args);
    CLI::App* debug_bundle = add_debug_command(app, debug_args);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 prints the message (or the help); its own codes (100+) become 2.
        return app.exit(e) == 0 ? 0 : 2;
    }
    try {
        if (*run) {
            // What flags and env say comes before the file fills in the rest.
            SettingsReload reload = reload_sources(*run, run_args, env);
            const auto from_file = apply_settings_file(*run, reload, env);
            RunOptions opts = to_run_options(run_args, env);
            opts.settings = effective_settings(*run, opts, env, from_file);
            if (run_args.print_settings) {
                print_settings(opts.settings, std::cout);
                return 0;
            }
            if (!has_capabilities(opts, env)) return 1;
            opts.command_line.assign(argv, argv + argc);
            opts.reload = std::move(reload);
            spdlog::set_level(spdlog::level::from_str(to_string(opts.log_level)));
            return run_agent(opts);
        }
        if (*status) return run_status(status_args, std::cout);
        if (*trace_peers) return run_trace(trace_args, std::cout);
        if (*peer.idle) return run_peer_idle(peer_args, std::cout);
        if (*peer.wake) return run_peer_wake(peer_args, std::cout);
        if (*apply) return run_apply(apply_args, std::cout);
        if (*set.lazy || *set.log_level || *set.inactivity)
            return run_set(set_args, set, std::cout);
        if (*features) return run_features(features_args, std::cout);
        if (*version) return run_version(version_args, std::cout);
        if (*debug_bundle) return run_debug_bundle(debug_args, std::cout);
    } catch (const UsageError& e) {
        std::cerr << "nbagent: " << e.what() << "\n";
        return 2;
    } catch (const std::exception& e) {
        std::cout.flush();
        std::cerr << "nbagent: " << e.what() << "\n";
        return 1;
    }
    // require_subcommand makes this unreachable for valid input; be explicit anyway.
    std::cerr << app.help();
    return 2;
}

}  // namespace nb::cli
