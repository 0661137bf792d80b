// `nbagent debug bundle`: everything a maintainer needs from a running agent in one
// tar.gz, taken without stopping wakes, and anonymized on request.
#include <net/if.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "agent/control/control_client.hpp"
#include "agent/control/request.hpp"
#include "agent/debug/anonymizer.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "base/file_io.hpp"
#include "base/time.hpp"
#include "cli/bundle_archive.hpp"
#include "cli/bundle_files.hpp"
#include "cli/commands.hpp"
#include "loader/bpf_report.hpp"

namespace nb::cli {

namespace {

// The status object of a status reply line, verbatim when it can be.
std::string status_object(std::string_view line) {
    if (auto object = verbatim_status(line)) return std::string(*object) + "\n";
    return ControlClient::check_reply(line).at("status").dump() + "\n";
}

// WireGuard as the agent's backend sees it, read here (root) rather than by the agent, so
// a dump of a large device never holds up its loop. Keys come back for the scrub only.
std::string read_wireguard(const std::string& interface, WgBackend backend,
                           std::unordered_set<std::string>& secrets) {
    try {
        WgDevice dev;
        std::string note;
        if (backend == WgBackend::Kernel) {
            // Wakes change a big device faster than it can be dumped: better a dump that
            // may miss a changing peer than none.
            bool consistent = true;
            dev = NetlinkControl(interface).get_device_as_is(consistent);
            if (!consistent)
                note =
                    "# the device changed during every dump (NLM_F_DUMP_INTR): peers that "
                    "changed meanwhile may be missing or repeated\n";
        } else {
            dev = UapiControl(interface).get_device();  // wireguard-go answers under its lock
        }
        secrets = secrets_of(dev);
        return note + wireguard_dump(dev);
    } catch (const std::exception& e) {
        return "(WireGuard could not be read: " + std::string(e.what()) + ")\n";
    }
}

std::string default_output(const std::string& interface) {
    std::string stamp = rfc3339_now();  // 2026-12-04T12:00:00.123Z
    stamp = stamp.substr(0, 19);
    for (char& c : stamp)
        if (c == ':') c = '-';
    return "nbagent-debug-" + interface + "-" + stamp + ".tar.gz";
}

// Waits for the agent's writer (poll every 100 ms); returns the final reply. A million
// peers' trace and stacks take seconds; ten minutes means the writer is stuck.
nlohmann::json wait_collected(ControlClient& client, const std::string& dir) {
    const DebugRequest poll{DebugRequest::Step::Poll, 0, dir};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
    while (std::chrono::steady_clock::now() < deadline) {
        nlohmann::json reply = client.request(to_json(poll));
        if (reply.value("done", false)) return reply;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    throw std::runtime_error("the agent did not finish writing " + dir +
                             " within 10 minutes (its files stay there)");
}

struct Collected {
    std::vector<BundleFile> files;
    std::string cpu_profile;
    nlohmann::json names;
    std::unordered_set<std::string> secrets;
};

// What the CLI reads itself while the agent profiles.
void collect_own(ControlClient& client, const std::string& interface, Collected& c) {
    c.files.push_back({"version.json", version_json().dump(2) + "\n"});
    c.files.push_back({"features.json", probe_features_json().dump(2) + "\n"});
    // The counts alone first: they name the backend.
    const WgBackend backend =
        agent_status_from_json(client.request(to_json(StatusRequest{false})).at("status"))
            .wg_backend;
    c.files.push_back(
        {"status.json", status_object(client.request_text(to_json(StatusRequest{true})))});
    c.files.push_back({"wireguard.txt", read_wireguard(interface, backend, c.secrets)});
    const unsigned ifindex = if_nametoindex(interface.c_str());
    c.files.push_back({"tc.txt", ifindex ? tc_report(static_cast<int>(ifindex))
                                         : "(no interface " + interface + ")\n"});
}

void collect_agent(ControlClient& client, const std::string& dir, Collected& c) {
    client.request(to_json(DebugRequest{DebugRequest::Step::Collect, 0, dir}));
    nlohmann::json done = wait_collected(client, dir);
    c.cpu_profile = done.value("cpu_profile", "");
    c.names = done.value("names", nlohmann::json::object());
    std::vector<std::string> names = done.value("files", std::vector<std::string>{});
    if (c.cpu_profile == "running" && std::filesystem::exists(dir + "/cpu.prof")) {
        names.push_back("cpu.prof");
        c.cpu_profile = "taken";
    }
    for (const std::string& n : names)
        c.files.push_back({n, read_whole_file(dir + "/" + n).value_or("")});
    if (done.contains("errors"))
        c.files.push_back({"errors.txt", done["errors"].get<std::string>() + "\n"});
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
}

// Scrubs keys from every file; with `anonymize`, maps addresses, keys and names.
size_t protect(Collected& c, bool anonymize) {
    size_t removed = 0;
    Anonymizer anon;
    if (anonymize) {
        for (const auto& [kind, list] : c.names.items())
            for (const auto& name : list) anon.add_name(name.get<std::string>(), kind);
        char host[256] = {};
        if (gethostname(host, sizeof host - 1) == 0 && host[0]) anon.add_name(host, "host");
    }
    for (BundleFile& f : c.files) {
        if (f.name == "cpu.prof") continue;  // binary: addresses of code, no keys or IPs
        removed += scrub_secrets(f.data, c.secrets);
        if (anonymize) f.data = anon.text(f.data);
    }
    return removed;
}

}  // namespace

CLI::App* add_debug_command(CLI::App& app, DebugArgs& a) {
    CLI::App* cmd = add_grouped_command(
        app, "debug", "Help for bug reports", "bundle",
        "Write status, trace, logs, WireGuard, BPF and profiles of the running agent into one "
        "tar.gz (root); with --anonymize, safe to attach to a public report");
    add_socket_options(*cmd, a.interface, a.run_dir);
    cmd->add_option("-o,--output", a.output,
                    "Archive to write (default: ./nbagent-debug-IF-TIME.tar.gz)");
    cmd->add_flag("--anonymize", a.anonymize,
                  "Replace addresses, public keys, host names and connector commands");
    cmd->add_option("--profile-duration", a.profile_duration, "How long the CPU profile runs")
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
                try {
                    if (parse_duration(text).count() > 0) return {};
                    return "duration must be positive";
                } catch (const std::invalid_argument& e) {
                    return e.what();
                }
            },
            "DURATION"))
        ->capture_default_str();
    cmd->add_flag("--no-profiles", a.no_profiles, "No CPU profile (the bundle is taken at once)");
    return cmd;
}

int run_debug_bundle(const DebugArgs& a, std::ostream& out) {
    if (::geteuid() != 0)
        throw std::runtime_error("debug bundle needs root (it reads WireGuard and BPF)");
    const auto profile =
        a.no_profiles ? std::chrono::milliseconds(0) : parse_duration(a.profile_duration);
    const std::string socket = ControlClient::find_socket(a.run_dir, a.interface);
    const std::string interface =
        a.interface.value_or(std::filesystem::path(socket).stem().string());
    const std::string output = a.output.value_or(default_output(interface));
    if (std::filesystem::exists(output)) throw std::runtime_error(output + " exists already");
    ControlClient client(socket);
    const auto started = std::chrono::steady_clock::now();
    nlohmann::json start = client.request(to_json(
        DebugRequest{DebugRequest::Step::Start, static_cast<uint64_t>(profile.count()), ""}));
    const std::string dir = start.at("dir").get<std::string>();
    Collected c;
    collect_own(client, interface, c);
    if (profile.count() && start.value("cpu_profile", "") == "running") {
        out << "profiling the agent for " << a.profile_duration << "...\n" << std::flush;
        std::this_thread::sleep_until(started + profile);
    }
    collect_agent(client, dir, c);
    c.files.insert(c.files.begin(), {"README.txt", bundle_readme(a.anonymize, c.cpu_profile)});
    const size_t removed = protect(c, a.anonymize);
    std::string folder = std::filesystem::path(output).filename().string();
    folder = folder.substr(0, folder.find(".tar"));
    write_tar_gz(output, folder, c.files);
    out << "wrote " << output << " (" << std::filesystem::file_size(output) << " bytes, "
        << c.files.size() << " files" << (a.anonymize ? ", anonymized" : "") << ")\n";
    if (removed) out << "removed " << removed << " copies of private or preshared keys\n";
    return 0;
}

}  // namespace nb::cli
