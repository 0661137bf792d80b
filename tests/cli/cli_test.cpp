#include <gtest/gtest.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "agent/control/protocol.hpp"
#include "cli/commands.hpp"
#include "tests/cli/cli_harness.hpp"
#include "tests/control/server_loop.hpp"
#include "tests/support/privileged.hpp"

namespace nb::cli {
namespace {

using namespace std::chrono_literals;

// Each text parses to its duration.
template <typename Parse>
void expect_parses(Parse parse,
                   std::initializer_list<std::pair<const char*, std::chrono::milliseconds>> cases) {
    for (const auto& [text, want] : cases) EXPECT_EQ(parse(text), want) << '"' << text << '"';
}

// Each text is rejected with an Error whose message quotes the text and, if given, also
// contains `also`.
template <typename Error, typename Parse>
void expect_rejected(Parse parse, std::initializer_list<const char*> texts,
                     std::string_view also = {}) {
    for (const char* text : texts) {
        try {
            parse(text);
            ADD_FAILURE() << "accepted \"" << text << "\"";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find(std::string("\"") + text + "\""), std::string::npos) << what;
            if (!also.empty()) {
                EXPECT_NE(what.find(also), std::string::npos) << what;
            }
        }
    }
}

TEST(CliDuration, ParsesUnitsAndBareSeconds) {
    expect_parses(parse_duration, {{"500ms", 500ms},
                                   {"10s", 10s},
                                   {"2m", 2min},
                                   {"1h", 1h},
                                   {"1m30s", 90s},
                                   {"1.5s", 1500ms},
                                   {"7", 7s},
                                   {"0", 0ms}});
}

TEST(CliDuration, RejectsMalformed) {
    expect_rejected<std::invalid_argument>(
        parse_duration,
        {"", "abc", "10x", "5 s", "-1s", "1s5", "ms", ".s", "10d", "1e3s", "99999999h"});
}

TEST(CliSwitch, Words) {
    EXPECT_EQ(parse_switch("ON"), true);
    EXPECT_EQ(parse_switch("true"), true);
    EXPECT_EQ(parse_switch("1"), true);
    EXPECT_EQ(parse_switch("Off"), false);
    EXPECT_EQ(parse_switch("FALSE"), false);
    EXPECT_EQ(parse_switch("0"), false);
    EXPECT_EQ(parse_switch("yes"), std::nullopt);
    EXPECT_EQ(parse_switch(""), std::nullopt);
}

TEST(CliInactivity, BareNumbersAreMinutes) {
    expect_parses(parse_inactivity_threshold, {{"15", 15min},
                                               {"1", 1min},
                                               {"1.5", 90s},
                                               {"90s", 90s},
                                               {"2m", 2min},
                                               {"1h30m", 90min},
                                               {"60000ms", 1min},
                                               {"10s", 10s},
                                               {"0.5", 30s}});
}

TEST(CliInactivity, BelowMinimumAndMalformedAreRejected) {
    expect_rejected<UsageError>(parse_inactivity_threshold, {"0", "9s", "5s", "0.1", "9999ms"},
                                "minimum of 10s");
    expect_rejected<UsageError>(parse_inactivity_threshold,
                                {"", "abc", "10x", "1.2.3", ".", "-5", "5 m"});
}

TEST(CliLazy, Precedence) {
    EXPECT_TRUE(resolve_lazy(std::nullopt, env_of({})));
    EXPECT_FALSE(resolve_lazy(std::nullopt, env_of({{"NB_LAZY_CONN", "OFF"}})));
    EXPECT_TRUE(resolve_lazy(std::nullopt, env_of({{"NB_LAZY_CONN", "on"}})));
    EXPECT_FALSE(
        resolve_lazy(std::nullopt, env_of({{"NB_ENABLE_EXPERIMENTAL_LAZY_CONN", "false"}})));
    EXPECT_TRUE(resolve_lazy(std::nullopt, env_of({{"NB_ENABLE_EXPERIMENTAL_LAZY_CONN", "True"}})));
    // NB_LAZY_CONN beats the legacy variable; the flag beats both.
    const auto both = env_of({{"NB_LAZY_CONN", "0"}, {"NB_ENABLE_EXPERIMENTAL_LAZY_CONN", "true"}});
    EXPECT_FALSE(resolve_lazy(std::nullopt, both));
    EXPECT_TRUE(resolve_lazy("true", both));
    EXPECT_FALSE(resolve_lazy("false", env_of({{"NB_LAZY_CONN", "on"}})));
    // Empty means unset.
    EXPECT_FALSE(resolve_lazy(
        std::nullopt,
        env_of({{"NB_LAZY_CONN", ""}, {"NB_ENABLE_EXPERIMENTAL_LAZY_CONN", "false"}})));
}

TEST(CliLazy, BadEnvironmentValuesAreErrors) {
    try {
        resolve_lazy(std::nullopt, env_of({{"NB_LAZY_CONN", "maybe"}}));
        FAIL();
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("NB_LAZY_CONN=\"maybe\""), std::string::npos)
            << e.what();
    }
    try {
        resolve_lazy(std::nullopt, env_of({{"NB_ENABLE_EXPERIMENTAL_LAZY_CONN", "on"}}));
        FAIL();
    } catch (const UsageError& e) {
        EXPECT_NE(std::string(e.what()).find("NB_ENABLE_EXPERIMENTAL_LAZY_CONN"),
                  std::string::npos);
    }
}

TEST(CliInactivity, Precedence) {
    EXPECT_EQ(resolve_inactivity_threshold(std::nullopt, env_of({})), 15min);
    const auto env = env_of({{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "30"}});
    EXPECT_EQ(resolve_inactivity_threshold(std::nullopt, env), 30min);
    EXPECT_EQ(resolve_inactivity_threshold("90s", env), 90s);
    // Empty means unset.
    EXPECT_EQ(resolve_inactivity_threshold(std::nullopt,
                                           env_of({{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", ""}})),
              15min);
    // A good flag hides a bad variable.
    EXPECT_EQ(
        resolve_inactivity_threshold("5m", env_of({{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "10s"}})),
        5min);
    try {
        resolve_inactivity_threshold(std::nullopt,
                                     env_of({{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "5s"}}));
        FAIL();
    } catch (const UsageError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("NB_LAZY_CONN_INACTIVITY_THRESHOLD=\"5s\""), std::string::npos) << what;
        EXPECT_NE(what.find("minimum of 10s"), std::string::npos) << what;
    }
}

TEST_F(CliAsRoot, RunFillsOptions) {
    std::optional<RunOptions> ran;
    auto r = cli({"run",
                  "-i",
                  "wg7",
                  "--wg",
                  "kernel",
                  "--lazy-conn=false",
                  "--max-held-packets",
                  "64",
                  "--connect-timeout",
                  "2m",
                  "--exec-timeout",
                  "500ms",
                  "--run-dir",
                  "/tmp/nbx",
                  "--attach",
                  "clsact",
                  "--log-level",
                  "warn",
                  "--inactivity-threshold",
                  "90s",
                  "--max-peers",
                  "1000"},
                 {{"NB_LAZY_CONN", "on"}, {"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "30"}}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->interface, "wg7");
    EXPECT_EQ(ran->config_path, std::nullopt);
    EXPECT_EQ(ran->wg_mode, WgMode::Kernel);
    EXPECT_FALSE(ran->lazy);
    EXPECT_EQ(ran->max_held_packets, 64u);
    EXPECT_EQ(ran->connect_timeout, 2min);
    EXPECT_EQ(ran->exec_timeout, 500ms);
    EXPECT_EQ(ran->run_dir, "/tmp/nbx");
    EXPECT_EQ(ran->attach_mode, AttachMode::Clsact);
    EXPECT_EQ(ran->inactivity_threshold, 90s);  // the flag beats the variable
    EXPECT_EQ(ran->max_peers, 1000u);
}

TEST_F(CliAsRoot, RunDefaultsAndEnvironment) {
    std::optional<RunOptions> ran;
    auto r = cli({"run", "-i", "wg0", "--connect-timeout", "3"}, {{"NB_LAZY_CONN", "off"}}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->wg_mode, WgMode::Auto);
    EXPECT_FALSE(ran->lazy);
    EXPECT_EQ(ran->max_held_packets, 128u);
    EXPECT_EQ(ran->connect_timeout, 3s);
    EXPECT_EQ(ran->exec_timeout, 5s);
    EXPECT_EQ(ran->run_dir, kDefaultRunDir);
    EXPECT_EQ(ran->attach_mode, AttachMode::Auto);
    EXPECT_EQ(ran->inactivity_threshold, 15min);
    EXPECT_EQ(ran->max_peers, 0u);
}

TEST_F(CliAsRoot, RunInactivityThresholdAndMaxPeers) {
    std::optional<RunOptions> ran;
    auto r = cli({"run", "-i", "wg0", "--inactivity-threshold", "45"}, {}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->inactivity_threshold, 45min);  // bare number: minutes

    ran.reset();
    r = cli({"run", "-i", "wg0"}, {{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "1h30m"}}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->inactivity_threshold, 90min);

    ran.reset();
    r = cli({"run", "-i", "wg0"}, {{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", ""}}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->inactivity_threshold, 15min);

    ran.reset();
    r = cli({"run", "-i", "wg0", "--max-peers", "16777216"}, {}, &ran);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(ran);
    EXPECT_EQ(ran->max_peers, 16777216u);

    // Below the minimum: a usage error naming the value and the minimum.
    ran.reset();
    r = cli({"run", "-i", "wg0", "--inactivity-threshold", "5s"}, {}, &ran);
    EXPECT_EQ(r.code, 2);
    EXPECT_FALSE(ran);
    EXPECT_NE(r.err.find("\"5s\" is below the minimum of 10s"), std::string::npos) << r.err;

    r = cli({"run", "-i", "wg0"}, {{"NB_LAZY_CONN_INACTIVITY_THRESHOLD", "0"}}, &ran);
    EXPECT_EQ(r.code, 2);
    EXPECT_FALSE(ran);
    EXPECT_NE(r.err.find("nbagent: NB_LAZY_CONN_INACTIVITY_THRESHOLD=\"0\""), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("minimum of 10s"), std::string::npos) << r.err;
}

TEST_F(CliAsRoot, ArgumentErrorsExitTwo) {
    const std::vector<std::vector<std::string>> bad = {
        {"run"},  // no -i
        {"run", "-i", "wg0", "--max-held-packets", "0"},
        {"run", "-i", "wg0", "--max-held-packets", "4097"},
        {"run", "-i", "wg0", "--wg", "fast"},
        {"run", "-i", "wg0", "--attach", "xdp"},
        {"run", "-i", "wg0", "--connect-timeout", "10x"},
        {"run", "-i", "wg0", "--exec-timeout", "0s"},
        {"run", "-i", "wg0", "--lazy-conn=perhaps"},
        {"run", "-i", "wg0", "--log-level", "loud"},
        {"run", "-i", "wg0", "-c", "/nonexistent/wg0.conf"},
        {"status", "--bogus"},
        {"trace"},
        {"trace", "peers", "--count", "0"},
        {"peer", "idle", "not-a-key"},
        {"run", "-i", "wg0", "--inactivity-threshold", "9s"},
        {"run", "-i", "wg0", "--inactivity-threshold", "soon"},
        {"run", "-i", "wg0", "--max-peers", "0"},
        {"run", "-i", "wg0", "--max-peers", "16777217"},
        {"apply"},  // no -c
        {"apply", "-c", "/nonexistent/wg0.conf"},
        {"set"},
        {"set", "lazy"},
        {"set", "lazy", "maybe"},
        {},
    };
    for (const auto& args : bad) {
        std::optional<RunOptions> ran;
        auto r = cli(args, {}, &ran);
        std::string joined;
        for (const auto& a : args) joined += a + " ";
        EXPECT_EQ(r.code, 2) << joined << "\n" << r.err;
        EXPECT_FALSE(ran) << joined;
        EXPECT_FALSE(r.err.empty()) << joined;
    }
    auto r = cli({"run", "-i", "wg0"}, {{"NB_LAZY_CONN", "sometimes"}});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("nbagent: NB_LAZY_CONN=\"sometimes\""), std::string::npos) << r.err;
    EXPECT_EQ(cli({"--help"}).code, 0);
}

// `run` as uid 65534 with only `keep` of root's capabilities (kept across setuid, then
// made effective): exit code, whether the agent was called, and stderr.
struct AsUser {
    int code = -1;
    bool called = false;
    std::string err;
};
AsUser run_as_nobody(const std::vector<cap_value_t>& keep, std::vector<const char*> args) {
    int pipe_fds[2];
    if (::pipe(pipe_fds) != 0) return {};
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(pipe_fds[0]);
        ::prctl(PR_SET_KEEPCAPS, 1);
        if (::setuid(65534) != 0) ::_exit(99);
        cap_t caps = cap_init();
        if (!keep.empty()) {
            cap_set_flag(caps, CAP_PERMITTED, static_cast<int>(keep.size()), keep.data(), CAP_SET);
            cap_set_flag(caps, CAP_EFFECTIVE, static_cast<int>(keep.size()), keep.data(), CAP_SET);
        }
        if (cap_set_proc(caps) != 0) ::_exit(98);
        bool called = false;
        args.insert(args.begin(), "nbagent");
        testing::internal::CaptureStderr();
        const int code = run_cli(
            static_cast<int>(args.size()), args.data(),
            [&](const RunOptions&) {
                called = true;
                return 0;
            },
            env_of({}));
        const std::string out =
            std::to_string(code) + (called ? "C" : "-") + testing::internal::GetCapturedStderr();
        if (::write(pipe_fds[1], out.data(), out.size()) < 0) ::_exit(97);
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
        got.append(buf, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    AsUser r;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got.size() < 2) {
        r.err = "child failed, status " + std::to_string(status);
        return r;
    }
    r.code = got[0] - '0';
    r.called = got[1] == 'C';
    r.err = got.substr(2);
    return r;
}

TEST_F(CliAsRoot, RunChecksCapabilitiesNotTheUid) {
    // Without any: refused, naming what is missing.
    AsUser r = run_as_nobody({}, {"run", "-i", "wg0"});
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_FALSE(r.called);
    int last_cap = 0;  // CAP_BPF (39) came with 5.8; bpf() wanted CAP_SYS_ADMIN before
    std::ifstream("/proc/sys/kernel/cap_last_cap") >> last_cap;
    const std::string names = last_cap >= 39 ? "CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF and CAP_PERFMON"
                                             : "CAP_NET_ADMIN, CAP_NET_RAW and CAP_SYS_ADMIN";
    EXPECT_NE(r.err.find("nbagent run needs root, or the capabilities " + names +
                         "; missing: " + names + " ("),
              std::string::npos)
        << r.err;
    // --trigger udp loads no program: no BPF capability.
    r = run_as_nobody({}, {"run", "-i", "wg0", "--trigger", "udp"});
    EXPECT_NE(r.err.find("missing: CAP_NET_ADMIN and CAP_NET_RAW ("), std::string::npos) << r.err;
    // One missing is named alone.
    std::vector<cap_value_t> all = {CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN};
    if (last_cap >= 39) all = {CAP_NET_ADMIN, CAP_NET_RAW, 39 /* CAP_BPF */, 38 /* CAP_PERFMON */};
    r = run_as_nobody({all.begin() + 1, all.end()}, {"run", "-i", "wg0"});
    EXPECT_NE(r.err.find("; missing: CAP_NET_ADMIN ("), std::string::npos) << r.err;
    // With them all, as a unit's AmbientCapabilities= gives them: the agent starts.
    r = run_as_nobody(all, {"run", "-i", "wg0"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(r.called) << r.err;
}

TEST(CliFormat, RelativeTimes) {
    const int64_t now = 1'700'000'000'000;
    EXPECT_EQ(format_relative(0, now), "never");
    EXPECT_EQ(format_relative(now - 3'400, now), "3s ago");
    EXPECT_EQ(format_relative(now + 5'000, now), "0s ago");
    EXPECT_EQ(format_relative(now - 125'000, now), "2m ago");
    EXPECT_EQ(format_relative(now - 7'300'000, now), "2h ago");
    EXPECT_EQ(format_relative(now - 3 * 86'400'000LL, now), "3d ago");
}

TEST(CliFormat, BytesAsWgShowWritesThem) {
    EXPECT_EQ(format_bytes(0), "0 B");
    EXPECT_EQ(format_bytes(1023), "1023 B");
    EXPECT_EQ(format_bytes(1024), "1.00 KiB");
    EXPECT_EQ(format_bytes(1536), "1.50 KiB");
    EXPECT_EQ(format_bytes(5ull << 20), "5.00 MiB");
    EXPECT_EQ(format_bytes(3ull << 40), "3.00 TiB");
    EXPECT_EQ(format_bytes(UINT64_MAX), "16.00 EiB");
}

TEST(CliFormat, TraceEvents) {
    const std::string key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    // Each event as the agent sends it (of `key`, at 14:02:03.123) and the line printed.
    const std::pair<const char*, std::string> cases[] = {
        {R"("src":"10.0.0.1","dst":"10.1.0.2","proto":"udp","sport":1234,"dport":53)",
         "14:02:03.123 trigger   " + key + " udp 10.0.0.1:1234 -> 10.1.0.2:53"},
        {R"("ts":"2024-05-01T14:02:03.123+02:00","src":"fd00::1","dst":"fd00::2","proto":"icmpv6")",
         "14:02:03.123 trigger   " + key + " icmpv6 fd00::1 -> fd00::2"},
        {R"("src":"fd00::1","dst":"fd00::2","proto":"tcp","sport":40000,"dport":443)",
         "14:02:03.123 trigger   " + key + " tcp [fd00::1]:40000 -> [fd00::2]:443"},
        {R"("event":"transition","from":"Connecting","to":"Connected","reason":"handshake",)"
         R"("latency_ms":1.94)",
         "14:02:03.123 state     " + key + " Connecting -> Connected (1.9 ms)"},
        {R"("event":"transition","from":"Idle","to":"Connecting","reason":"packet")",
         "14:02:03.123 state     " + key + " Idle -> Connecting (packet)"},
    };
    for (const auto& [fields, line] : cases) {
        nlohmann::json event = nlohmann::json::parse(std::string("{") + fields + "}");
        event.emplace("event", "trigger");  // emplace: what the case sets stays
        event.emplace("ts", "2024-05-01T14:02:03.123Z");
        event["peer"] = key;
        EXPECT_EQ(format_trace_event(event), line) << fields;
    }
    EXPECT_EQ(
        format_trace_event({{"event", "dropped"}, {"ts", "2024-05-01T14:02:04.000Z"}, {"n", 3}}),
        "14:02:04.000 dropped   {\"n\":3}");
}

AgentStatus two_peers() {
    AgentStatus s;
    s.interface = "wg0";
    s.wg_backend = WgBackend::Userspace;
    s.wireguard = "ok";
    s.trigger = TriggerEngine::Bpf;
    s.attach_mode = AttachMode::Tcx;
    s.idle = 1;
    s.connected = 1;
    PeerStatus a;
    a.public_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    a.allowed_ips = {"10.0.0.2/32", "10.9.0.0/16"};
    a.state = PeerState::Connected;
    a.endpoint = "192.0.2.1:51820";
    a.wakes = 4;
    a.held = 9;
    a.dropped = 2;
    a.last_wake_ms = 12.34;
    PeerStatus b;
    b.public_key = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA=";
    s.peers = {a, b};
    return s;
}

TEST(CliFormat, SummarySaysSinceWhenWireGuardIsNotThere) {
    AgentStatus s = two_peers();
    s.wireguard = "not answering";
    s.wireguard_since = "2024-05-01T14:02:03.100Z";
    s.wireguard_error = "wireguard-go UAPI socket /x.sock: no complete reply\nwithin 500 ms";
    std::string summary;
    write_status_summary(s, summary);
    EXPECT_NE(summary.find("wireguard:  not answering since 2024-05-01T14:02:03.100Z "
                           "(wireguard-go UAPI socket /x.sock: no complete reply within 500 ms)\n"),
              std::string::npos)
        << summary;
}

TEST(CliFormat, SummaryAndTable) {
    const AgentStatus s = two_peers();
    std::string summary;
    write_status_summary(s, summary);
    EXPECT_NE(summary.find("interface:  wg0\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("backend:    userspace\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("wireguard:  ok\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("trigger:    bpf (tcx)\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("lazy:       on\n"), std::string::npos) << summary;
    EXPECT_NE(summary.find("2 (Idle 1, Connecting 0, Connected 1)"), std::string::npos) << summary;

    std::string table;
    write_peer_table(s, 5'000, table);
    std::vector<std::string> lines;
    for (size_t pos = 0, nl; (nl = table.find('\n', pos)) != std::string::npos; pos = nl + 1) {
        lines.push_back(table.substr(pos, nl - pos));
    }
    ASSERT_EQ(lines.size(), 3u) << table;
    EXPECT_EQ(lines[0].rfind("PUBLIC KEY", 0), 0u);
    // Columns line up: every row has its state at the header's STATE offset.
    const size_t state_col = lines[0].find("STATE");
    EXPECT_EQ(lines[1].substr(state_col, 9), "Connected");
    EXPECT_EQ(lines[2].substr(state_col, 4), "Idle");
    EXPECT_NE(lines[1].find("10.0.0.2/32,10.9.0.0/16"), std::string::npos);
    EXPECT_NE(lines[1].find("12.3 ms"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("never"), std::string::npos);
    EXPECT_NE(lines[2].find(" - "), std::string::npos);
}

// End to end through a real control socket.
class CliAgainstServer : public CliAsRoot {
  protected:
    test::TempRunDir dir;
    std::vector<nlohmann::json> requests;
    std::unique_ptr<test::ServerLoop> loop;
    AgentStatus status = two_peers();
    std::string apply_error;  // when set, apply fails with it

    nlohmann::json apply(const nlohmann::json& req) const {
        if (!apply_error.empty()) return {{"ok", false}, {"error", apply_error}};
        const bool dry = req.value("dry_run", false);
        return {{"ok", true},
                {"applied", !dry},
                {"diff", {{"added", 3}, {"removed", 1}, {"changed", 2}, {"unchanged", 994}}},
                {"ms", dry ? 4.56 : 12.34}};
    }

    void start() {
        loop = std::make_unique<test::ServerLoop>(
            dir.path, "wg0",
            [this](ControlServer& srv, const ControlRequest& typed,
                   ControlServer::ClientId id) -> ControlReply {
                const nlohmann::json req = to_json(typed);
                requests.push_back(req);
                if (req["cmd"] == "trace") {
                    srv.subscribe_trace(id);
                    return nlohmann::json{{"ok", true}};
                }
                if (req["cmd"] == "peer_idle") return nlohmann::json{{"ok", true}};
                if (req["cmd"] == "apply") return apply(req);
                if (req["cmd"] == "set_lazy")
                    return nlohmann::json{{"ok", true}, {"lazy", req["lazy"]}};
                AgentStatus s = status;
                if (!req.value("detail", false)) s.peers.clear();
                return ControlReply::raw(status_reply_text(s));
            });
    }
};

TEST_F(CliAgainstServer, Status) {
    start();
    auto r = cli({"status", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("Connected 1"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("PUBLIC KEY"), std::string::npos);
    EXPECT_EQ(requests.back(), (nlohmann::json{{"cmd", "status"}, {"detail", false}}));

    r = cli({"status", "-d", "-i", "wg0", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("PUBLIC KEY"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(status.peers[1].public_key), std::string::npos) << r.out;

    r = cli({"status", "-d", "--json", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out),
              nlohmann::json::parse(status_reply_text(status))["status"]);
}

TEST_F(CliAgainstServer, PeerIdleAndTrace) {
    start();
    const std::string key = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=";
    auto r = cli({"peer", "idle", key, "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(requests.back(), (nlohmann::json{{"cmd", "peer_idle"}, {"public_key", key}}));

    // Publish steadily from the loop while the CLI follows the trace.
    std::atomic<bool> tracing = true;
    std::thread publisher([&] {
        int seq = 0;
        while (tracing) {
            loop->call([&] {
                loop->server().publish_trace({{"event", "transition"},
                                              {"ts", "2024-05-01T10:00:00.123Z"},
                                              {"seq", seq++},
                                              {"peer", "k"},
                                              {"from", "Idle"},
                                              {"to", "Connecting"},
                                              {"reason", "packet"}});
            });
            std::this_thread::sleep_for(2ms);
        }
    });
    struct Stop {
        std::atomic<bool>& flag;
        std::thread& t;
        ~Stop() {
            flag = false;
            t.join();
        }
    } stop{tracing, publisher};
    r = cli({"trace", "peers", "--json", "--count", "2", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(requests.back(), (nlohmann::json{{"cmd", "trace"}}));
    std::vector<std::string> lines;
    for (size_t pos = 0, nl; (nl = r.out.find('\n', pos)) != std::string::npos; pos = nl + 1) {
        lines.push_back(r.out.substr(pos, nl - pos));
    }
    ASSERT_EQ(lines.size(), 2u) << r.out;
    const auto first = nlohmann::json::parse(lines[0]);
    EXPECT_EQ(nlohmann::json::parse(lines[1])["seq"], first["seq"].get<int>() + 1);

    r = cli({"trace", "peers", "--count", "1", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out, "10:00:00.123 state     k Idle -> Connecting (packet)\n");
}

TEST_F(CliAgainstServer, Apply) {
    start();
    const std::string conf = dir.path + "/wg0.conf";
    { std::ofstream(conf) << "[Interface]\n"; }
    auto r = cli({"apply", "-c", conf, "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    // The client reads the file (the agent never opens a path a client names) and says
    // where it came from: messages name it, and SIGHUP re-reads it.
    EXPECT_EQ(requests.back(), (nlohmann::json{{"cmd", "apply"},
                                               {"config_text", "[Interface]\n"},
                                               {"source", conf},
                                               {"file", conf},
                                               {"dry_run", false}}));
    EXPECT_EQ(r.out, "applied: 3 added, 1 removed, 2 changed, 994 unchanged (12.3 ms)\n");

    r = cli({"apply", "-c", conf, "--dry-run", "-i", "wg0", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(requests.back()["dry_run"], true);
    EXPECT_EQ(r.out,
              "dry run: would apply 3 added, 1 removed, 2 changed, 994 unchanged (4.6 ms)\n");

    r = cli({"apply", "-c", conf, "--json", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    nlohmann::json expected = apply({{"cmd", "apply"}});
    expected.erase("ok");
    EXPECT_EQ(nlohmann::json::parse(r.out), expected);

    // A relative path reaches the agent as an absolute one: it has its own cwd.
    struct Cwd {
        std::filesystem::path saved = std::filesystem::current_path();
        ~Cwd() { std::filesystem::current_path(saved); }
    } cwd;
    std::filesystem::current_path(dir.path);
    r = cli({"apply", "-c", "wg0.conf", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(requests.back()["file"], conf);
    EXPECT_EQ(requests.back()["source"], conf);

    // What is not a regular file is refused here, before the agent is asked anything.
    const size_t asked = requests.size();
    r = cli({"apply", "-c", "/dev/zero", "--run-dir", dir.path});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("/dev/zero: not a regular file (a character device)"), std::string::npos)
        << r.err;
    EXPECT_EQ(requests.size(), asked);

    // The agent's error (e.g. a config line) is printed as it is, exit 1.
    apply_error = conf + ":7: bad AllowedIPs \"10.0.0.300/32\"";
    r = cli({"apply", "-c", conf, "--run-dir", dir.path});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "nbagent: " + apply_error + "\n");
    EXPECT_EQ(r.out, "");
}

TEST_F(CliAgainstServer, SetLazy) {
    start();
    auto r = cli({"set", "lazy", "off", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(requests.back(), (nlohmann::json{{"cmd", "set_lazy"}, {"lazy", false}}));
    EXPECT_EQ(r.out, "lazy connections are now off\n");

    r = cli({"set", "lazy", "ON", "-i", "wg0", "--run-dir", dir.path});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(requests.back(), (nlohmann::json{{"cmd", "set_lazy"}, {"lazy", true}}));
    EXPECT_EQ(r.out, "lazy connections are now on\n");

    const size_t sent = requests.size();
    r = cli({"set", "lazy", "maybe", "--run-dir", dir.path});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("\"maybe\""), std::string::npos) << r.err;
    EXPECT_EQ(requests.size(), sent);  // nothing reached the agent
}

TEST_F(CliAgainstServer, HugeDetailedStatus) {
    constexpr size_t kPeers = 100000;
    const PeerStatus tmpl = status.peers[0];
    status.peers.assign(kPeers, tmpl);
    for (size_t i = 0; i < kPeers; ++i) status.peers[i].wakes = i;
    start();
    StatusArgs args;
    args.run_dir = dir.path;
    args.detail = true;
    args.json = true;
    std::ostringstream json_out;
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(run_status(args, json_out), 0);
    const auto t1 = std::chrono::steady_clock::now();
    args.json = false;
    std::ostringstream table_out;
    ASSERT_EQ(run_status(args, table_out), 0);
    const auto t2 = std::chrono::steady_clock::now();
    std::printf("status -d --json: %.1f ms, status -d: %.1f ms (100k peers, in-process)\n",
                std::chrono::duration<double, std::milli>(t1 - t0).count(),
                std::chrono::duration<double, std::milli>(t2 - t1).count());
    const AgentStatus got = agent_status_from_json(nlohmann::json::parse(json_out.str()));
    ASSERT_EQ(got.peers.size(), kPeers);
    EXPECT_EQ(got.peers.back().wakes, kPeers - 1);
    const std::string table = table_out.str();
    // The summary (6 lines), a blank line and the header above the peers.
    EXPECT_EQ(static_cast<size_t>(std::count(table.begin(), table.end(), '\n')), kPeers + 8);
}

TEST_F(CliAgainstServer, ControlErrorsExitOne) {
    auto r = cli({"status", "--run-dir", dir.path});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "nbagent: no nbagent is running (no socket in " + dir.path + ")\n");
    start();
    r = cli({"status", "-i", "wg9", "--run-dir", dir.path});
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err.rfind("nbagent: no nbagent is running on wg9", 0), 0u) << r.err;
}

}  // namespace
}  // namespace nb::cli
