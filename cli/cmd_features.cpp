#include <iomanip>

#include "agent/wg/netlink_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "cli/commands.hpp"
#include "loader/probes.hpp"

namespace nb::cli {

namespace {

nlohmann::json probe_json(const Probe& p) {
    return {{"ok", p.ok}, {"detail", p.detail}};
}

}  // namespace

CLI::App* add_features_command(CLI::App& app, FeaturesArgs& args) {
    CLI::App* cmd = app.add_subcommand(
        "features", "Show what this kernel and machine support, and what auto would pick");
    cmd->add_flag("--json", args.json, "Print one JSON object");
    return cmd;
}

nlohmann::json probe_features_json() {
    BpfFeatures bpf = probe_bpf_features();
    bool kernel_wg = kernel_wireguard_available();
    bool wg_go = wireguard_go_available();
    nlohmann::json j = {
        {"bpf", probe_json(bpf.bpf)},
        {"ringbuf", probe_json(bpf.ringbuf)},
        {"lpm_trie", probe_json(bpf.lpm_trie)},
        {"tcx", probe_json(bpf.tcx)},
        {"btf", probe_json(bpf.btf)},
        {"kernel_wireguard",
         probe_json(kernel_wg ? Probe{true, "yes"}
                              : Probe{false, "no 'wireguard' generic netlink family"})},
        {"wireguard_go", probe_json(wg_go ? Probe{true, wireguard_go_program()}
                                          : Probe{false, wireguard_go_program() + " not found"})},
    };
    // Mirrors what `nbagent run` does with --trigger/--wg/--attach left at auto.
    nlohmann::json pick;
    if (bpf.usable()) {
        pick["trigger"] = to_string(TriggerEngine::Bpf);
        pick["attach"] = to_string(bpf.tcx.ok ? AttachMode::Tcx : AttachMode::Clsact);
    } else {
        pick["trigger"] = to_string(TriggerEngine::Udp);
        pick["trigger_reason"] = bpf.why_not();
    }
    pick["wg"] = kernel_wg ? to_string(WgBackend::Kernel)
                 : wg_go   ? to_string(WgBackend::Userspace)
                           : "none";
    j["auto"] = pick;
    return j;
}

int run_features(const FeaturesArgs& args, std::ostream& out) {
    nlohmann::json j = probe_features_json();
    if (args.json) {
        out << j.dump() << "\n";
        return 0;
    }
    const std::pair<const char*, const char*> rows[] = {{"bpf", "bpf()"},
                                                        {"ringbuf", "ring buffer"},
                                                        {"lpm_trie", "LPM trie"},
                                                        {"tcx", "tcx"},
                                                        {"btf", "BTF"},
                                                        {"kernel_wireguard", "kernel WireGuard"},
                                                        {"wireguard_go", "wireguard-go"}};
    for (auto [key, label] : rows) {
        const auto& p = j[key];
        out << std::left << std::setw(18) << label << (p["ok"].get<bool>() ? "yes" : "no");
        const std::string detail = p["detail"].get<std::string>();
        if (detail != "yes") out << "  (" << detail << ")";
        out << "\n";
    }
    const auto& a = j["auto"];
    out << std::left << std::setw(18) << "auto trigger" << a["trigger"].get<std::string>();
    if (a.contains("attach")) out << " (" << a["attach"].get<std::string>() << ")";
    if (a.contains("trigger_reason")) out << "  (" << a["trigger_reason"].get<std::string>() << ")";
    out << "\n"
        << std::left << std::setw(18) << "auto WireGuard" << a["wg"].get<std::string>() << "\n";
    return 0;
}

}  // namespace nb::cli
