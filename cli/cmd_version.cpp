#include <sys/utsname.h>

#include <iomanip>
#include <string>

#include "base/build_info.hpp"
#include "cli/commands.hpp"
#include "loader/libbpf_version.hpp"

namespace nb::cli {

namespace {

// uname's release ("6.1.0-18-amd64"), or "unknown" if uname fails (it cannot on Linux).
std::string kernel_release() {
    utsname u{};
    if (::uname(&u) != 0) return "unknown";
    return u.release;
}

}  // namespace

CLI::App* add_version_command(CLI::App& app, VersionArgs& args) {
    CLI::App* cmd = app.add_subcommand(
        "version", "Show the version and build of nbagent, and the libbpf and kernel it runs on");
    cmd->add_flag("--json", args.json, "Print one JSON object");
    return cmd;
}

nlohmann::json version_json() {
    const BuildInfo& b = build_info();
    return {
        {"version", std::string(b.version)},   {"build_type", std::string(b.build_type)},
        {"compiler", std::string(b.compiler)}, {"libbpf", libbpf_version()},
        {"kernel", kernel_release()},
    };
}

int run_version(const VersionArgs& args, std::ostream& out) {
    const nlohmann::json j = version_json();
    if (args.json) {
        out << j.dump() << "\n";
        return 0;
    }
    const std::pair<const char*, const char*> rows[] = {{"version", "version"},
                                                        {"build_type", "build type"},
                                                        {"compiler", "compiler"},
                                                        {"libbpf", "libbpf"},
                                                        {"kernel", "kernel"}};
    for (auto [key, label] : rows)
        out << std::left << std::setw(12) << label << j[key].get<std::string>() << "\n";
    return 0;
}

}  // namespace nb::cli
