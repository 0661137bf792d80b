#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

SetCommands add_set_command(CLI::App& app, SetArgs& a) {
    CLI::App* set = app.add_subcommand("set", "Change a setting of the running agent, at once");
    set->require_subcommand(1);
    SetCommands c;
    c.lazy = set->add_subcommand("lazy", "Turn lazy connections on or off");
    c.lazy->add_option("VALUE", a.value, "on or off (true/false, 1/0)")
        ->required()
        ->check(switch_validator());
    c.log_level = set->add_subcommand(
        "log-level", "What the agent logs from now on, until SIGHUP reads the settings again");
    c.log_level->add_option("LEVEL", a.value, enum_name_list<LogLevel>())
        ->required()
        ->check(enum_validator<LogLevel>());
    c.inactivity = set->add_subcommand(
        "inactivity-threshold",
        "Send connected peers back to Idle after this long without traffic, from now on (peers "
        "with their own InactivityThreshold keep it), until SIGHUP reads the settings again");
    c.inactivity
        ->add_option("DURATION", a.value,
                     "e.g. 90s, 15m, 1h30m; a bare number is minutes; at least 10s")
        ->required()
        ->check(inactivity_validator());
    for (CLI::App* sub : {c.lazy, c.log_level, c.inactivity})
        add_socket_options(*sub, a.interface, a.run_dir);
    return c;
}

int run_set_lazy(const SetArgs& a, std::ostream& out) {
    const std::optional<bool> lazy = parse_switch(a.value);
    if (!lazy) throw UsageError("set lazy: " + expected_one_of(kSwitchNames, a.value));
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    const nlohmann::json reply = client.request(to_json(SetLazyRequest{*lazy}));
    // Report what the agent says it is now, not what we asked for.
    auto now = reply.find("lazy");
    if (now == reply.end() || !now->is_boolean()) {
        throw std::runtime_error("invalid reply from nbagent (no lazy)");
    }
    out << "lazy connections are now " << switch_name(now->get<bool>()) << '\n';
    return 0;
}

int run_set(const SetArgs& a, const SetCommands& which, std::ostream& out) {
    if (*which.lazy) return run_set_lazy(a, out);
    SetRequest req;
    if (*which.log_level) req.log_level = parse_option<LogLevel>("set log-level", a.value);
    if (*which.inactivity) req.inactivity_threshold = parse_inactivity_threshold(a.value);
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    const nlohmann::json reply = client.request(to_json(ControlRequest{req}));
    auto level = reply.find("log_level");
    auto threshold = reply.find("inactivity_threshold_ms");
    if (level == reply.end() || !level->is_string() || threshold == reply.end() ||
        !threshold->is_number_unsigned())
        throw std::runtime_error("invalid reply from nbagent (no log_level or threshold)");
    if (req.log_level) out << "log level is now " << level->get<std::string>() << '\n';
    if (req.inactivity_threshold)
        out << "inactivity threshold is now "
            << format_duration(std::chrono::milliseconds(threshold->get<uint64_t>())) << '\n';
    return 0;
}

}  // namespace nb::cli
