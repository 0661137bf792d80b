#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

CLI::App* add_set_command(CLI::App& app, SetArgs& a) {
    CLI::App* lazy = add_grouped_command(app, "set", "Change a setting of the running agent",
                                         "lazy", "Turn lazy connections on or off");
    add_checked_argument(
        *lazy, "VALUE", a.lazy, "on or off",
        [](const std::string& text) {
            return parse_switch(text) ? std::string() : "expected on or off, got \"" + text + "\"";
        },
        "on|off");
    add_socket_options(*lazy, a.interface, a.run_dir);
    return lazy;
}

int run_set_lazy(const SetArgs& a, std::ostream& out) {
    const std::optional<bool> lazy = parse_switch(a.lazy);
    if (!lazy) throw UsageError("set lazy: expected on or off, got \"" + a.lazy + "\"");
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    const nlohmann::json reply = client.request(to_json(SetLazyRequest{*lazy}));
    // Report what the agent says it is now, not what we asked for.
    auto now = reply.find("lazy");
    if (now == reply.end() || !now->is_boolean()) {
        throw std::runtime_error("invalid reply from nbagent (no lazy)");
    }
    out << "lazy connections are now " << (now->get<bool>() ? "on" : "off") << '\n';
    return 0;
}

}  // namespace nb::cli
