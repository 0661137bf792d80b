#include "agent/control/control_client.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

CLI::App* add_set_command(CLI::App& app, SetArgs& a) {
    CLI::App* set = app.add_subcommand("set", "Change a setting of the running agent");
    set->require_subcommand(1);
    CLI::App* lazy = set->add_subcommand("lazy", "Turn lazy connections on or off");
    lazy->add_option("VALUE", a.lazy, "on or off")
        ->required()
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                return parse_switch(text) ? std::string()
                                          : "expected on or off, got \"" + text + "\"";
            },
            "on|off"));
    lazy->add_option("-i,--interface", a.interface, "Interface (needed if several agents run)");
    lazy->add_option("--run-dir", a.run_dir, "Directory of the control socket")
        ->capture_default_str();
    return lazy;
}

int run_set_lazy(const SetArgs& a, std::ostream& out) {
    const std::optional<bool> lazy = parse_switch(a.lazy);
    if (!lazy) throw UsageError("set lazy: expected on or off, got \"" + a.lazy + "\"");
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    const nlohmann::json reply = client.request({{"cmd", "set_lazy"}, {"lazy", *lazy}});
    // Report what the agent says it is now, not what we asked for.
    auto now = reply.find("lazy");
    if (now == reply.end() || !now->is_boolean()) {
        throw std::runtime_error("invalid reply from nbagent (no lazy)");
    }
    out << "lazy connections are now " << (now->get<bool>() ? "on" : "off") << '\n';
    return 0;
}

}  // namespace nb::cli
