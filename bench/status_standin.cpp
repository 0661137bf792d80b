// `nbagent status` at sizes no WireGuard here can hold (issue 6: `status -d --json` at
// 100k peers in < 100 ms). wireguard-go stops at 65,536 peers and this host has no
// kernel WireGuard, so the agent runs on a veth interface with an in-memory peer table
// standing in for WireGuard. Everything else is the real agent: its config parse, BPF
// programs attached to the interface, lazy manager, routes and control socket; the
// timed commands are the real `nbagent` CLI, each a process of its own. A status reply
// never asks WireGuard (peer state and counters come from the agent and its maps), so
// the stand-in does not change what is timed; bench/status.sh times the same commands
// on real wireguard-go up to 65,536 peers, to compare at one size. It times a scrape of
// /metrics the same way (curl, a process per scrape), and its size: what a scrape costs
// at this many peers (issue 18: O(1) in the number of peers).
//
//   status_standin --cli PATH/nbagent [--peers N] [--runs N]     (as root)
//
// It makes its own network namespace (unshare) and removes what it made.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "agent/engine/engine.hpp"
#include "agent/wg/wg_control.hpp"
#include "bench/bench_util.hpp"

namespace {

using namespace nb::bench;

// WireGuard's peer table without WireGuard: what set_device built, for get_device.
class MemoryWg : public nb::WgControl {
  public:
    // Not kernel WireGuard: the agent reads no device off the loop for it.
    nb::WgBackend backend() const override { return nb::WgBackend::Userspace; }
    nb::WgDevice get_device() override {
        nb::WgDevice d;
        d.peers.reserve(peers_.size());
        for (const auto& [k, p] : peers_) d.peers.push_back(p);
        return d;
    }
    void set_device(const nb::DeviceUpdate& u) override {
        if (u.replace_peers) peers_.clear();
        for (const auto& op : u.peers) {
            if (op.remove) {
                peers_.erase(op.public_key);
                continue;
            }
            auto it = peers_.find(op.public_key);
            if (it == peers_.end()) {
                if (op.update_only) continue;
                it = peers_.emplace(op.public_key, nb::WgPeer{}).first;
                it->second.public_key = op.public_key;
            }
            nb::WgPeer& p = it->second;
            if (op.replace_allowed_ips) p.allowed_ips.clear();
            p.allowed_ips.insert(p.allowed_ips.end(), op.allowed_ips.begin(), op.allowed_ips.end());
            if (op.preshared_key) p.preshared_key = op.preshared_key;
            if (op.endpoint) p.endpoint = op.endpoint;
            if (op.persistent_keepalive) p.persistent_keepalive = *op.persistent_keepalive;
        }
    }

  private:
    std::unordered_map<nb::WgKey, nb::WgPeer, nb::WgKeyHash> peers_;
};

const char* kIface = "nbstandin0";
const char* kMetrics = "127.0.0.1:9590";  // in the bench's own network namespace

// Runs `argv` with stdout to /dev/null (or to `out`); returns its exit code. posix_spawn,
// not fork: copying this process's page tables (the agent's 100k peers) would count in
// the process CPU time measured around it, growing with the peers.
int run(const std::vector<std::string>& argv, const std::string& out = "/dev/null") {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    // The agent's thread blocks its signals; the CLI must not inherit that.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int err = posix_spawn(&pid, args[0], &fa, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (err != 0) throw std::runtime_error(argv[0] + ": posix_spawn failed");
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

double pct(std::vector<double> v, int p) {
    std::sort(v.begin(), v.end());
    size_t i = (v.size() * static_cast<size_t>(p) + 99) / 100;
    return v[std::max<size_t>(i, 1) - 1];
}

double cpu_ms(clockid_t clock) {
    timespec ts{};
    clock_gettime(clock, &ts);
    return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// CPU time of the children waited for so far (the CLI processes), in ms.
double children_cpu_ms() {
    rusage ru{};
    getrusage(RUSAGE_CHILDREN, &ru);
    auto ms = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
    };
    return ms(ru.ru_utime) + ms(ru.ru_stime);
}

// One command's wall times, and the CPU time per call of the agent's thread and of the
// CLI: on a shared machine those vary far less than the wall time does.
struct Timing {
    double p50 = 0, p99 = 0, agent_cpu = 0, process_cpu = 0, cli_cpu = 0;
};

Timing time_command(const std::vector<std::string>& argv, int runs, pthread_t agent) {
    clockid_t agent_clock;
    if (pthread_getcpuclockid(agent, &agent_clock) != 0)
        throw std::runtime_error("pthread_getcpuclockid failed");
    std::vector<double> ms;
    const double agent0 = cpu_ms(agent_clock), cli0 = children_cpu_ms();
    // The whole process: the agent's other threads too (the metrics server renders a
    // scrape on its own), and this bench's main thread, which only waits meanwhile.
    const double process0 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID);
    for (int r = 0; r < runs; ++r) {
        auto t = Clock::now();
        int rc = run(argv);
        ms.push_back(ms_since(t));
        if (rc != 0)
            throw std::runtime_error(argv[0] + " " + argv[1] + " failed (exit " +
                                     std::to_string(rc) + ")");
    }
    return {pct(ms, 50), pct(ms, 99), (cpu_ms(agent_clock) - agent0) / runs,
            (cpu_ms(CLOCK_PROCESS_CPUTIME_ID) - process0) / runs,
            (children_cpu_ms() - cli0) / runs};
}

void write_config(const std::string& path, uint32_t peers) {
    std::ofstream f(path);
    f << "[Interface]\nPrivateKey = " << key_for(0, 0xee).base64() << "\nListenPort = 51820\n";
    for (uint32_t i = 0; i < peers; ++i) {
        // As the lab's peers: an IPv4 /32, an IPv6 /128 and a numeric endpoint each.
        char v6[64];
        std::snprintf(v6, sizeof v6, "fd64::%x:%x", i >> 16, i & 0xffff);
        f << "\n[Peer]\nPublicKey = " << key_for(i, 0x11).base64()
          << "\nAllowedIPs = " << host(64, i).str() << ", " << v6 << "/128\nEndpoint = 192.0.2."
          << (1 + i % 254) << ":51820\n";
    }
    if (!f) throw std::runtime_error("writing " + path);
}

// The bench's veth, removed at exit; a failure is only reported (the run's figures stand).
void remove_iface() {
    std::string cmd = std::string("ip link del ") + kIface + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0)
        std::fprintf(stderr, "note: could not remove %s (ip link del)\n", kIface);
}

// A network namespace of its own with the veth, and a directory holding the config of
// `peers` peers; returns the directory, or nothing after saying what failed.
std::optional<std::string> make_lab(uint32_t peers) {
    if (unshare(CLONE_NEWNET) != 0) {
        std::perror("unshare(CLONE_NEWNET) (run as root)");
        return std::nullopt;
    }
    // Loopback for /metrics (a new namespace's is down).
    if (std::system("ip link set lo up") != 0) {
        std::fprintf(stderr, "ip link set lo up failed\n");
        return std::nullopt;
    }
    char tmpl[] = "/tmp/nbstandin.XXXXXX";
    if (!mkdtemp(tmpl)) {
        std::perror("mkdtemp");
        return std::nullopt;
    }
    write_config(std::string(tmpl) + "/standin.conf", peers);
    // A veth end: kernels without the dummy module have veth (the labs need it).
    if (std::system(("ip link add " + std::string(kIface) + " type veth peer name " + kIface + "p")
                        .c_str()) != 0) {
        std::fprintf(stderr, "ip link add %s type veth failed\n", kIface);
        return std::nullopt;
    }
    return std::string(tmpl);
}

struct Args {
    uint32_t peers = 100000;
    int runs = 20;
    std::string cli;
};

std::optional<Args> parse_args(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        if (k == "--peers")
            a.peers = static_cast<uint32_t>(std::stoul(argv[i + 1]));
        else if (k == "--runs")
            a.runs = std::stoi(argv[i + 1]);
        else if (k == "--cli")
            a.cli = argv[i + 1];
        else
            return std::nullopt;
    }
    if (a.cli.empty() || access(a.cli.c_str(), X_OK) != 0 || a.runs < 1 || a.peers == 0)
        return std::nullopt;
    return a;
}

// The peers a `status -d --json` output lists, and how many of them the counts call Idle.
std::pair<size_t, size_t> listed_and_idle(const std::string& path) {
    std::ifstream f(path);
    auto j = nlohmann::json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.contains("peers") || !j["peers"].is_array()) return {0, 0};
    return {j["peers"].size(), j["counts"].value("idle", size_t{0})};
}

long rss_kib() {
    long kib = 0;
    std::ifstream st("/proc/self/status");
    std::string k;
    while (st >> k)
        if (k == "VmRSS:") st >> kib;
    return kib;
}

void print_results(uint32_t peers, const std::vector<std::string>& names,
                   const std::vector<Timing>& res) {
    std::printf("| %-24s | %9s | %9s | %12s | %14s | %13s |\n", "command", "p50 ms", "p99 ms",
                "loop CPU ms", "process CPU ms", "client CPU ms");
    std::printf(
        "|--------------------------|-----------|-----------|--------------|----------------|"
        "---------------|\n");
    for (size_t i = 0; i < res.size(); ++i)
        std::printf("| %-24s | %9.1f | %9.1f | %12.2f | %14.2f | %13.1f |\n", names[i].c_str(),
                    res[i].p50, res[i].p99, res[i].agent_cpu, res[i].process_cpu, res[i].cli_cpu);
    for (size_t i = 0; i < res.size(); ++i) {
        std::string n = names[i];
        std::replace(n.begin(), n.end(), ' ', '_');
        std::printf(
            "RESULT status_standin peers=%u command=%s p50=%.1f p99=%.1f agent_cpu_ms=%.2f "
            "process_cpu_ms=%.2f cli_cpu_ms=%.1f\n",
            peers, n.c_str(), res[i].p50, res[i].p99, res[i].agent_cpu, res[i].process_cpu,
            res[i].cli_cpu);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::optional<Args> args = parse_args(argc, argv);
    if (!args) {
        std::fprintf(stderr, "usage: status_standin --cli PATH [--peers N] [--runs N]\n");
        return 2;
    }
    const uint32_t peers = args->peers;
    const int runs = args->runs;
    const std::string& cli = args->cli;
    const std::optional<std::string> made = make_lab(peers);
    if (!made) return 1;
    const std::string dir = *made, conf = dir + "/standin.conf", run_dir = dir + "/run";
    spdlog::set_level(spdlog::level::warn);

    // The agent reads SIGTERM from a signalfd: blocked in every thread, so the signal
    // that ends it waits for that read.
    nb::block_agent_signals();

    nb::RunOptions o;
    o.interface = kIface;
    o.config_path = conf;
    o.run_dir = run_dir;
    o.trigger = nb::TriggerMode::Bpf;
    o.metrics_listen = nb::parse_listen_address(kMetrics);
    o.wg_standin = [](const std::string&) { return std::make_unique<MemoryWg>(); };
    int agent_rc = -1;
    auto t0 = Clock::now();
    std::thread agent([&] { agent_rc = nb::run_agent(o); });

    const std::vector<std::string> base = {cli, "-i", kIface, "--run-dir", run_dir};
    auto cmd = [&](std::vector<std::string> words) {
        std::vector<std::string> a = {cli};
        a.insert(a.end(), words.begin(), words.end());
        a.insert(a.end(), base.begin() + 1, base.end());
        return a;
    };
    while (run(cmd({"status"})) != 0) {
        if (agent_rc >= 0 || ms_since(t0) > 3600e3) {
            std::fprintf(stderr, "the agent did not come up (exit %d)\n", agent_rc);
            kill(getpid(), SIGTERM);
            agent.join();
            remove_iface();
            return 1;
        }
        usleep(200 * 1000);
    }
    double start_s = ms_since(t0) / 1000;

    const std::string url = std::string("http://") + kMetrics + "/metrics";
    const std::vector<std::string> scrape = {"/usr/bin/curl", "-fsS", url};
    const std::vector<std::pair<std::string, std::vector<std::string>>> commands = {
        {"status", cmd({"status"})},
        {"status -d --json", cmd({"status", "-d", "--json"})},
        {"status -d", cmd({"status", "-d"})},
        // One peer among all: the last one, found by its key and by an address it routes.
        {"status -d --peer KEY",
         cmd({"status", "-d", "--peer", key_for(peers - 1, 0x11).base64()})},
        {"status -d --ip ADDR", cmd({"status", "-d", "--ip", host(64, peers - 1).addr.str()})},
        {"metrics scrape (curl)", scrape},
    };
    std::vector<std::string> names;
    std::vector<Timing> res;
    for (const auto& [name, argv] : commands) {
        names.push_back(name);
        res.push_back(time_command(argv, runs, agent.native_handle()));
    }
    const std::string scraped = dir + "/metrics.txt";
    run(scrape, scraped);
    const auto scrape_bytes = std::filesystem::file_size(scraped);
    // What the reply holds: every peer, and all of them Idle.
    const std::string out = dir + "/status.json";
    run(cmd({"status", "-d", "--json"}), out);
    auto bytes = std::filesystem::file_size(out);
    const auto [listed, idle] = listed_and_idle(out);
    const long rss = rss_kib();
    kill(getpid(), SIGTERM);
    agent.join();
    remove_iface();

    std::printf(
        "\nnbagent status, %u peers on a veth interface with a WireGuard stand-in, "
        "%d runs each\n",
        peers, runs);
    std::printf(
        "agent start (config to answering): %.1f s; process RSS %ld MiB; status -d "
        "--json is %.1f MiB; a metrics scrape %ju bytes; agent exit %d\n",
        start_s, rss / 1024, static_cast<double>(bytes) / (1 << 20),
        static_cast<uintmax_t>(scrape_bytes), agent_rc);
    print_results(peers, names, res);
    std::printf("RESULT status_standin peers=%u metrics_bytes=%ju\n", peers,
                static_cast<uintmax_t>(scrape_bytes));
    std::filesystem::remove_all(dir);
    if (listed != peers || idle != peers) {
        std::fprintf(stderr, "status -d --json listed %zu peers, %zu Idle; expected %u\n", listed,
                     idle, peers);
        return 1;
    }
    return agent_rc == 0 ? 0 : 1;
}
