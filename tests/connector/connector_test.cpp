#include "agent/connector/connector.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "base/spawn.hpp"
#include "tests/support/privileged.hpp"

namespace nb {
namespace {

using namespace std::chrono_literals;

ConnectRequest request(std::optional<std::string> endpoint = std::nullopt) {
    ConnectRequest r;
    for (size_t i = 0; i < r.peer.bytes.size(); ++i) r.peer.bytes[i] = static_cast<uint8_t>(i * 7);
    r.interface = "wg7";
    r.configured_endpoint = std::move(endpoint);
    return r;
}

bool is_loopback(const IpAddr& ip) {
    if (ip.family == AF_INET) return ip.bytes[0] == 127;
    return ip == *IpAddr::parse("::1");
}

int count_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;  // the directory stream itself
}

// Gone = no such process, or a zombie waiting for an init that does not reap.
bool process_gone(pid_t pid) {
    for (int i = 0; i < 100; ++i) {
        std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
        if (!stat) return true;
        std::string line;
        std::getline(stat, line);
        size_t paren = line.rfind(')');
        if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'Z') {
            return true;
        }
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

std::string temp_path(const char* tag) {
    return "/tmp/nb-connector-test-" + std::to_string(getpid()) + "-" + tag;
}

TEST(StaticConnector, NumericIpv4AndIpv6) {
    auto c = make_static_connector();
    EXPECT_EQ(c->name(), "static");
    auto r4 = c->connect(request("192.0.2.1:51820"));
    ASSERT_TRUE(r4.endpoint) << r4.error;
    EXPECT_TRUE(r4.error.empty());
    EXPECT_EQ(r4.endpoint->str(), "192.0.2.1:51820");
    auto r6 = c->connect(request("[fd00::1]:51821"));
    ASSERT_TRUE(r6.endpoint) << r6.error;
    EXPECT_EQ(r6.endpoint->family(), AF_INET6);
    EXPECT_EQ(r6.endpoint->port(), 51821);
}

TEST(StaticConnector, HostnameResolvesAtWakeTime) {
    auto r = make_static_connector()->connect(request("localhost:4242"));
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_TRUE(is_loopback(r.endpoint->ip())) << r.endpoint->str();
    EXPECT_EQ(r.endpoint->port(), 4242);
}

TEST(StaticConnector, NoConfiguredEndpoint) {
    auto r = make_static_connector()->connect(request());
    EXPECT_FALSE(r.endpoint);
    EXPECT_EQ(r.error, "peer has no Endpoint in the config");
}

TEST(StaticConnector, MalformedEndpoint) {
    auto r = make_static_connector()->connect(request("no-port-here"));
    EXPECT_FALSE(r.endpoint);
    EXPECT_NE(r.error.find("no-port-here"), std::string::npos) << r.error;
}

// Resolving a name that does not exist would ask the machine's DNS server, so this
// runs in a child in a fresh network namespace where any query fails locally.
TEST(StaticConnector, UnresolvableHostNamesTheHost) {
    NB_REQUIRE_ROOT();
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        if (unshare(CLONE_NEWNET) != 0) _exit(2);
        auto r = make_static_connector()->connect(request("nonexistent.invalid:51820"));
        std::string msg = r.endpoint ? std::string("RESOLVED") : r.error;
        if (write(fds[1], msg.data(), msg.size()) < 0) _exit(3);
        _exit(0);
    }
    close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    EXPECT_NE(msg.find("cannot resolve 'nonexistent.invalid'"), std::string::npos) << msg;
    EXPECT_GT(msg.size(), std::string("cannot resolve 'nonexistent.invalid': ").size()) << msg;
}

TEST(ExecConnector, PrintsNumericEndpointAndSeesEnvironment) {
    ConnectRequest req = request("198.51.100.9:1000");
    std::string cmd = "[ \"$NB_PEER_PUBLIC_KEY\" = '" + req.peer.base64() +
                      "' ] && [ \"$NB_INTERFACE\" = wg7 ] && "
                      "[ \"$NB_CONFIGURED_ENDPOINT\" = 198.51.100.9:1000 ] || exit 9; "
                      "echo; echo '  192.0.2.7:1234  '; echo 10.0.0.1:1";
    auto c = make_exec_connector(cmd, 5s);
    EXPECT_EQ(c->name(), "exec");
    auto r = c->connect(req);
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->str(), "192.0.2.7:1234");
}

TEST(ExecConnector, NoConfiguredEndpointLeavesVariableUnset) {
    setenv("NB_CONFIGURED_ENDPOINT", "stale:1", 1);  // must not leak from our environment
    auto r = make_exec_connector(
                 "[ -z \"${NB_CONFIGURED_ENDPOINT+x}\" ] || exit 5; "
                 "echo 192.0.2.8:5",
                 5s)
                 ->connect(request());
    unsetenv("NB_CONFIGURED_ENDPOINT");
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->str(), "192.0.2.8:5");
}

TEST(ExecConnector, PrintsHostname) {
    auto r = make_exec_connector("echo localhost:4000", 5s)->connect(request());
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_TRUE(is_loopback(r.endpoint->ip())) << r.endpoint->str();
    EXPECT_EQ(r.endpoint->port(), 4000);
}

TEST(ExecConnector, TimeoutKillsTheWholeProcessGroup) {
    const std::string pidfile = temp_path("timeout");
    unlink(pidfile.c_str());
    auto c = make_exec_connector(
        "echo $$ > " + pidfile + "; sleep 10 & echo $! >> " + pidfile + "; wait", 200ms);
    auto start = std::chrono::steady_clock::now();
    auto r = c->connect(request());
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(r.endpoint);
    EXPECT_EQ(r.error, "exec connector timed out after 200 ms");
    EXPECT_GE(took, 200ms);
    EXPECT_LT(took, 2s);
    std::ifstream in(pidfile);
    pid_t shell = 0, sleeper = 0;
    in >> shell >> sleeper;
    unlink(pidfile.c_str());
    ASSERT_GT(shell, 0);
    ASSERT_GT(sleeper, 0);
    EXPECT_TRUE(process_gone(shell));
    EXPECT_TRUE(process_gone(sleeper));
    // The shell was our child and has been reaped.
    EXPECT_EQ(waitpid(shell, nullptr, WNOHANG), -1);
}

TEST(ExecConnector, StopTokenEndsTheCommand) {
    std::stop_source stop;
    ConnectRequest req = request();
    req.stop = stop.get_token();
    std::thread stopper([&] {
        std::this_thread::sleep_for(100ms);
        stop.request_stop();
    });
    auto start = std::chrono::steady_clock::now();
    auto r = make_exec_connector("sleep 10", 10s)->connect(req);
    stopper.join();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_FALSE(r.endpoint);
    EXPECT_NE(r.error.find("stopped"), std::string::npos) << r.error;
}

TEST(ExecConnector, NonZeroExitReportsStatusAndStderr) {
    auto r = make_exec_connector(
                 "echo 192.0.2.1:1; echo; echo 'no route to peer' >&2; "
                 "echo second >&2; exit 3",
                 5s)
                 ->connect(request());
    EXPECT_FALSE(r.endpoint);
    EXPECT_EQ(r.error, "exec connector exited with status 3: no route to peer");
}

TEST(ExecConnector, KilledBySignal) {
    auto r = make_exec_connector("kill -TERM $$", 5s)->connect(request());
    EXPECT_FALSE(r.endpoint);
    EXPECT_EQ(r.error, "exec connector killed by signal " + std::to_string(SIGTERM));
}

TEST(ExecConnector, GarbageOutput) {
    auto r = make_exec_connector("echo 'not an endpoint'", 5s)->connect(request());
    EXPECT_FALSE(r.endpoint);
    EXPECT_NE(r.error.find("exec connector printed 'not an endpoint'"), std::string::npos)
        << r.error;
    auto empty = make_exec_connector("true", 5s)->connect(request());
    EXPECT_FALSE(empty.endpoint);
    EXPECT_EQ(empty.error, "exec connector printed no endpoint");
}

// What a connector prints reaches the log, the trace and `status --json`: invalid UTF-8
// and terminal escapes come out as \xNN, so the JSON stays valid and the terminal safe.
TEST(ExecConnector, InvalidUtf8AndEscapesAreMadePrintable) {
    auto r = make_exec_connector("printf 'bad \\377\\376 \\033[2J end\\n' >&2; exit 1", 5s)
                 ->connect(request());
    EXPECT_FALSE(r.endpoint);
    EXPECT_EQ(r.error, "exec connector exited with status 1: bad \\xff\\xfe \\x1b[2J end");
    auto out = make_exec_connector("printf '\\377host\\033:1\\n'", 5s)->connect(request());
    EXPECT_FALSE(out.endpoint);
    EXPECT_NE(out.error.find("exec connector printed '\\xffhost\\x1b:1'"), std::string::npos)
        << out.error;
}

TEST(ExecConnector, HugeOutputIsBounded) {
    // 1 MiB on stdout; only the first line matters and the pipe never fills up.
    auto r = make_exec_connector("echo 192.0.2.3:3; head -c 1048576 /dev/zero | tr '\\0' x", 5s)
                 ->connect(request());
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->str(), "192.0.2.3:3");
}

TEST(ExecConnector, NoFdLeaks) {
    auto c = make_exec_connector("echo 192.0.2.1:9", 5s);
    int before = count_fds();
    for (int i = 0; i < 100; ++i) {
        auto r = c->connect(request());
        ASSERT_TRUE(r.endpoint) << r.error;
    }
    EXPECT_EQ(count_fds(), before);
}

TEST(ExecConnector, ChildInheritsOnlyStdio) {
    int leaky = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
    ASSERT_GE(leaky, 3);
    std::string fd = std::to_string(leaky);
    auto r = make_exec_connector("[ -e /proc/$$/fd/" + fd + " ] && exit 4; [ -e /proc/$$/fd/2 ] " +
                                     "|| exit 5; read x && exit 6; echo 192.0.2.1:9",
                                 5s)
                 ->connect(request());
    close(leaky);
    ASSERT_TRUE(r.endpoint) << r.error;
}

TEST(MakeConnector, ParsesSpec) {
    EXPECT_EQ(make_connector(std::nullopt, {1s})->name(), "static");
    EXPECT_EQ(make_connector("static", {1s})->name(), "static");
    auto exec = make_connector("exec:echo 192.0.2.4:4", {1s});
    EXPECT_EQ(exec->name(), "exec");
    auto r = exec->connect(request());
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->str(), "192.0.2.4:4");
    for (const char* bad : {"ice", "exec:", "Static", ""}) {
        try {
            make_connector(std::string(bad), {1s});
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(std::string("'").append(bad).append("'")),
                      std::string::npos)
                << e.what();
        }
    }
    EXPECT_THROW(make_exec_connector("true", 0ms), std::invalid_argument);
}

// The close-on-exec fallback of spawn_close_from (glibc before 2.34), both ways, on any
// glibc: a descriptor opened without O_CLOEXEC at or above the bound is marked, none
// below it is touched.
class MarkCloexec : public ::testing::TestWithParam<bool> {};

TEST_P(MarkCloexec, MarksFromTheBoundUp) {
    int below = open("/dev/null", O_RDONLY);
    int above = open("/dev/null", O_RDONLY);
    ASSERT_GE(below, 3);
    ASSERT_GT(above, below);
    EXPECT_TRUE(GetParam() ? mark_cloexec_listed(above) : mark_cloexec_from(above));
    EXPECT_FALSE(fcntl(below, F_GETFD) & FD_CLOEXEC);
    EXPECT_TRUE(fcntl(above, F_GETFD) & FD_CLOEXEC);
    close(below);
    close(above);
}

INSTANTIATE_TEST_SUITE_P(BothWays, MarkCloexec, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Listed" : "CloseRange"; });

}  // namespace
}  // namespace nb
