// The UDP trigger engine with real sockets, in a fresh network namespace: listeners,
// trigger detection, closing, and the forwarded initiation's source port.
#include "agent/activity/udp_trigger.hpp"

#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/netns.hpp"
#include "tests/support/privileged.hpp"

namespace nb {
namespace {

void in_fresh_netns(const std::function<void()>& body) {
    test::in_fresh_netns(body, true);
}

std::array<uint8_t, 148> initiation(uint8_t tag) {
    std::array<uint8_t, 148> m{};
    m[0] = 1;  // handshake initiation
    for (size_t i = 4; i < m.size(); ++i) m[i] = static_cast<uint8_t>(tag + i);
    return m;
}

void send_to(const SockAddr& to, const uint8_t* data, size_t len) {
    UniqueFd fd(socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_GE(fd.get(), 0);
    ASSERT_EQ(sendto(fd.get(), data, len, 0, reinterpret_cast<const sockaddr*>(&to.ss), to.len),
              static_cast<ssize_t>(len));
}

// Waits (up to 2 s) for the engine's epoll fd, then consumes.
int wait_and_consume(UdpTrigger& t) {
    pollfd p{t.fd(), POLLIN, 0};
    if (poll(&p, 1, 2000) <= 0) return 0;
    return t.consume();
}

struct Triggers {
    std::vector<uint32_t> ids;
    UdpTrigger::TriggerFn fn() {
        return [this](uint32_t id) { ids.push_back(id); };
    }
};

TEST(UdpListenerAddress, SpreadsOverLoopbackAddresses) {
    EXPECT_EQ(udp_listener_address(0, 2).str(), "127.1.0.1");
    EXPECT_EQ(udp_listener_address(1, 2).str(), "127.1.0.1");
    EXPECT_EQ(udp_listener_address(2, 2).str(), "127.1.0.2");
    EXPECT_EQ(udp_listener_address(1000000, 14116).str(), "127.1.0.71");
    EXPECT_EQ(udp_listener_address(255 * 2, 2).str(), "127.1.1.0");
}

TEST(UdpTrigger, AnInitiationToAnIdlePeersListenerIsItsTrigger) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] {
        Triggers got;
        UdpTrigger t({8, 2}, got.fn());
        auto ep3 = t.idle_endpoint(3);
        auto ep5 = t.idle_endpoint(5);
        ASSERT_TRUE(ep3 && ep5);
        EXPECT_EQ(ep3->ip().str(), "127.1.0.2");  // 3 / 2 listeners per address
        EXPECT_EQ(ep5->ip().str(), "127.1.0.3");
        EXPECT_NE(ep3->port(), 0);
        EXPECT_EQ(t.open_listeners(), 2u);
        EXPECT_EQ(t.idle_endpoint(3)->str(), ep3->str());  // asked again: the same one

        // A keepalive-sized datagram is not an initiation.
        uint8_t other[32] = {4};
        send_to(*ep3, other, sizeof(other));
        auto m = initiation(7);
        send_to(*ep5, m.data(), m.size());
        EXPECT_EQ(wait_and_consume(t), 1);
        ASSERT_EQ(got.ids.size(), 1u);
        EXPECT_EQ(got.ids[0], 5u);
    });
}

TEST(UdpTrigger, ListenersCloseWhenConnectedOrRemovedAndReopenWhenIdle) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] {
        Triggers got;
        UdpTrigger t({8, 0}, got.fn());
        t.install_peer(0, {}, SlotMode::Hold);
        t.install_peer(1, {}, SlotMode::Pass);  // never-lazy: connected at start
        t.install_peer(2, {}, SlotMode::Hold);
        EXPECT_EQ(t.open_listeners(), 2u);
        SockAddr old = *t.idle_endpoint(0);
        EXPECT_EQ(t.set_mode(0, SlotMode::Confirm), SlotMode::Hold);
        EXPECT_EQ(t.open_listeners(), 1u);
        // Closed for real: nothing listens on the old address any more.
        auto m = initiation(1);
        send_to(old, m.data(), m.size());
        EXPECT_EQ(wait_and_consume(t), 0);
        t.remove_peer(2, {});
        EXPECT_EQ(t.open_listeners(), 0u);
        t.set_mode(0, SlotMode::Hold);
        EXPECT_EQ(t.open_listeners(), 1u);
        EXPECT_THROW(t.set_mode(8, SlotMode::Hold), std::out_of_range);
    });
}

TEST(UdpTrigger, NoListenerTakesWireGuardsListenPort) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] {
        // Two ephemeral ports in this namespace: the kernel's pick is one of them.
        ASSERT_EQ(std::system("sysctl -qw net.ipv4.ip_local_port_range='40000 40001'"), 0);
        for (int round = 0; round < 4; ++round) {
            Triggers got;
            UdpTrigger t({4, 2}, got.fn());
            t.reserve_port(40000);
            EXPECT_EQ(t.idle_endpoint(0)->port(), 40001) << "round " << round;
            EXPECT_TRUE(t.port_in_use(40001));
            EXPECT_FALSE(t.port_in_use(40000));
        }
    });
}

// The point of forwarding: the initiation leaves from WireGuard's port, so the remote's
// response goes to WireGuard, which is waiting for exactly that handshake.
void forwards_from_wireguards_port(int family, const char* loop) {
    Triggers got;
    UdpTrigger t({4, 0}, got.fn());
    t.set_wireguard_source(40123, 0);
    auto m = initiation(9);
    send_to(*t.idle_endpoint(1), m.data(), m.size());
    ASSERT_EQ(wait_and_consume(t), 1);

    UniqueFd remote(socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    SockAddr at = SockAddr::from(*IpAddr::parse(loop), 40999);
    ASSERT_EQ(bind(remote.get(), reinterpret_cast<const sockaddr*>(&at.ss), at.len), 0);
    t.set_mode(1, SlotMode::Confirm);  // as the manager does: endpoint set, then confirm
    t.endpoint_set(1, at);
    EXPECT_EQ(t.forwarded(), 1u);
    pollfd p{remote.get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 2000), 1) << "nothing arrived at the remote";
    uint8_t buf[512];
    SockAddr from;
    from.len = sizeof(from.ss);
    ssize_t n = recvfrom(remote.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from.ss),
                         &from.len);
    ASSERT_EQ(n, 148);
    EXPECT_EQ(std::memcmp(buf, m.data(), m.size()), 0);
    EXPECT_EQ(from.port(), 40123);
    // Sent once: a second endpoint_set has nothing captured to send.
    t.endpoint_set(1, at);
    EXPECT_EQ(t.forwarded(), 1u);
}

TEST(UdpTrigger, ForwardsTheCapturedInitiationFromWireGuardsPortIpv4) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] { forwards_from_wireguards_port(AF_INET, "127.0.0.1"); });
}

TEST(UdpTrigger, ForwardsTheCapturedInitiationFromWireGuardsPortIpv6) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] { forwards_from_wireguards_port(AF_INET6, "::1"); });
}

TEST(UdpListenerLimits, AHardOpenFileLimitTooLowIsAClearError) {
    // In a child: the limit is lowered for good.
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        rlimit rl{1024, 1024};
        setrlimit(RLIMIT_NOFILE, &rl);
        int code = 1;
        try {
            // Beyond fs.nr_open (1048576 by default): not even root may raise it so far.
            check_udp_listener_limits(5'000'000);
        } catch (const std::runtime_error& e) {
            std::string w = e.what();
            code = w.find("open files") != std::string::npos &&
                           w.find("hard limit is 1024") != std::string::npos
                       ? 0
                       : 2;
        }
        _exit(code);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "1: no error; 2: the error did not name the limit";
}

bool has_cap_sys_resource() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("CapEff:", 0) == 0)
            return (std::stoull(line.substr(7), nullptr, 16) >> 24) & 1;  // CAP_SYS_RESOURCE
    return false;
}

// The hard limit too is raised where the agent may (root with CAP_SYS_RESOURCE).
TEST(UdpListenerLimits, RootRaisesTheHardLimitWhenNeeded) {
    NB_REQUIRE_ROOT();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        rlimit rl{1024, 1024};
        setrlimit(RLIMIT_NOFILE, &rl);
        // Root without CAP_SYS_RESOURCE (some containers) cannot: then a clear error.
        bool can = has_cap_sys_resource();
        try {
            auto warnings = check_udp_listener_limits(3000);
            getrlimit(RLIMIT_NOFILE, &rl);
            _exit(can && rl.rlim_cur >= 4024 && rl.rlim_max >= 4024 && !warnings.empty() ? 0 : 1);
        } catch (const std::runtime_error& e) {
            std::string w = e.what();
            _exit(!can && w.find("hard limit is 1024") != std::string::npos &&
                          w.find("Operation not permitted") != std::string::npos
                      ? 0
                      : 2);
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(UdpListenerLimits, RaisesTheSoftLimitToTheHardOne) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        rlimit rl{};
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 5000) _exit(3);
        rl.rlim_cur = 1024;
        setrlimit(RLIMIT_NOFILE, &rl);
        auto warnings = check_udp_listener_limits(3000);
        getrlimit(RLIMIT_NOFILE, &rl);
        _exit(rl.rlim_cur >= 4024 && !warnings.empty() ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "hard open-file limit below 5000 here";
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace nb
