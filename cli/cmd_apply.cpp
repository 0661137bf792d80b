#include <cstdio>
#include <filesystem>

#include "agent/config/config_file.hpp"
#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "cli/commands.hpp"

namespace nb::cli {

namespace {

uint64_t count_field(const nlohmann::json& diff, const char* name) {
    auto it = diff.find(name);
    if (it == diff.end() || !it->is_number_unsigned()) {
        throw std::runtime_error(std::string("invalid reply from nbagent (no diff.") + name + ")");
    }
    return it->get<uint64_t>();
}

}  // namespace

std::string format_apply_reply(const nlohmann::json& reply, bool dry_run) {
    auto applied = reply.find("applied");
    auto diff = reply.find("diff");
    auto ms = reply.find("ms");
    if (applied == reply.end() || !applied->is_boolean() || diff == reply.end() ||
        !diff->is_object() || ms == reply.end() || !ms->is_number()) {
        throw std::runtime_error("invalid reply from nbagent (expected applied, diff and ms)");
    }
    char took[48];
    std::snprintf(took, sizeof took, " (%.1f ms)", ms->get<double>());
    // The agent's "applied", not our --dry-run, says what happened.
    std::string line = applied->get<bool>() ? "applied: "
                       : dry_run            ? "dry run: would apply "
                                            : "not applied: ";
    line += std::to_string(count_field(*diff, "added")) + " added, " +
            std::to_string(count_field(*diff, "removed")) + " removed, " +
            std::to_string(count_field(*diff, "changed")) + " changed, " +
            std::to_string(count_field(*diff, "unchanged")) + " unchanged" + took;
    return line;
}

CLI::App* add_apply_command(CLI::App& app, ApplyArgs& a) {
    CLI::App* cmd = app.add_subcommand(
        "apply", "Give the running agent a new network map (only the difference is applied)");
    cmd->add_option("-c,--config", a.config, "wg-quick style config with the whole new map")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_flag("--dry-run", a.dry_run, "Only report what would change");
    add_socket_options(*cmd, a.interface, a.run_dir);
    cmd->add_flag("--json", a.json, "Print the agent's reply as JSON");
    return cmd;
}

int run_apply(const ApplyArgs& a, std::ostream& out) {
    // Read here, not by the agent: a path that blocks or never ends (a FIFO, /dev/zero)
    // then costs this client an error, never the agent's loop. The agent keeps the path
    // to re-read on SIGHUP (through the same bounded reader).
    const std::string path = std::filesystem::absolute(a.config).string();
    std::string text = read_config_file(path);
    ControlClient client(ControlClient::find_socket(a.run_dir, a.interface));
    ApplyRequest req;
    req.config_text = std::move(text);
    req.source = path;
    req.file = path;
    req.dry_run = a.dry_run;
    nlohmann::json reply = client.request(to_json(req));
    if (a.json) {
        // Like `status --json`: the result without the envelope (errors never get here).
        reply.erase("ok");
        out << reply.dump() << '\n';
        return 0;
    }
    out << format_apply_reply(reply, a.dry_run) << '\n';
    return 0;
}

}  // namespace nb::cli
