#include "agent/connector/connect_pool.hpp"

#include <poll.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "base/blocking.hpp"
#include "base/contended_mutex.hpp"

namespace nb {
namespace {

using namespace std::chrono_literals;

ConnectRequest request(std::string endpoint) {
    ConnectRequest r;
    r.interface = "wg0";
    r.configured_endpoint = std::move(endpoint);
    return r;
}

bool readable(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1 && (p.revents & POLLIN);
}

// Collects completions until `n` arrived or `timeout` passed, waiting on the eventfd.
std::map<uint64_t, ConnectPool::Completion> collect(ConnectPool& pool, size_t n,
                                                    std::chrono::milliseconds timeout) {
    std::map<uint64_t, ConnectPool::Completion> got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < n && std::chrono::steady_clock::now() < deadline) {
        if (!readable(pool.event_fd(), 50ms)) continue;
        for (auto& c : pool.drain()) got.emplace(c.job_id, std::move(c));
    }
    return got;
}

// Pure logic fake: a connector that throws, for the pool's error path.
class ThrowingConnector : public Connector {
  public:
    std::string name() const override { return "throwing"; }
    ConnectResult connect(const ConnectRequest&) override { throw std::runtime_error("boom"); }
};

TEST(ConnectPool, CompletionsAreSignalledThroughEventfd) {
    ConnectPool pool(2);
    EXPECT_FALSE(readable(pool.event_fd(), 0ms));
    EXPECT_TRUE(pool.drain().empty());
    std::shared_ptr<Connector> c = make_static_connector();
    for (uint64_t id = 1; id <= 50; ++id) {
        pool.submit({id, c, request("192.0.2.1:" + std::to_string(1000 + id))});
    }
    auto got = collect(pool, 50, 5000ms);
    ASSERT_EQ(got.size(), 50u);
    for (auto& [id, comp] : got) {
        ASSERT_TRUE(comp.result.endpoint) << comp.result.error;
        EXPECT_EQ(comp.result.endpoint->port(), 1000 + id);
        EXPECT_GE(comp.elapsed.count(), 0);
    }
    EXPECT_FALSE(readable(pool.event_fd(), 0ms));
}

uint64_t blocking_count(BlockingKind kind) {
    return blocking_snapshot()[static_cast<size_t>(kind)].waits.count;
}

// Each connector run counts as a Connector wait, and the DNS inside it (on a worker, off
// the loop) does not count as the loop's. The pool's locks are in the lock registry.
TEST(ConnectPool, ConnectorRunsCountAsConnectorTimeNotTheLoops) {
    const uint64_t runs = blocking_count(BlockingKind::Connector);
    const uint64_t dns = blocking_count(BlockingKind::Dns);
    {
        ConnectPool pool(1);
        std::shared_ptr<Connector> c = make_static_connector();
        pool.submit({1, c, request("localhost:51820")});  // resolved on the worker
        pool.submit({2, c, request("192.0.2.1:51820")});
        ASSERT_EQ(collect(pool, 2, 5000ms).size(), 2u);
    }
    EXPECT_EQ(blocking_count(BlockingKind::Connector), runs + 2);
    EXPECT_EQ(blocking_count(BlockingKind::Dns), dns);
    bool queue = false, done = false;
    for (const auto& l : lock_snapshot()) {
        queue = queue || l.name == "connect pool queue";
        done = done || l.name == "connect pool completions";
    }
    EXPECT_TRUE(queue);
    EXPECT_TRUE(done);
    // On the loop's thread the same lookup is the loop's wait.
    resolve_endpoint("localhost:51820");
    EXPECT_EQ(blocking_count(BlockingKind::Dns), dns + 1);
}

TEST(ConnectPool, ConnectorExceptionsBecomeErrors) {
    ConnectPool pool(1);
    pool.submit({7, std::make_shared<ThrowingConnector>(), request("192.0.2.1:1")});
    auto got = collect(pool, 1, 2000ms);
    ASSERT_EQ(got.count(7), 1u);
    EXPECT_FALSE(got[7].result.endpoint);
    EXPECT_EQ(got[7].result.error, "throwing connector failed: boom");
}

TEST(ConnectPool, HungJobDoesNotDelayOthers) {
    // One worker to start with: the fast jobs only finish quickly if the pool grows.
    ConnectPool pool(1, 8);
    std::shared_ptr<Connector> hung = make_exec_connector("sleep 30", std::chrono::seconds(60));
    std::shared_ptr<Connector> fast = make_exec_connector("echo 192.0.2.5:5", 5s);
    pool.submit({1, hung, request("192.0.2.1:1")});
    pool.submit({2, hung, request("192.0.2.1:1")});
    auto start = std::chrono::steady_clock::now();
    for (uint64_t id = 10; id < 15; ++id) pool.submit({id, fast, request("192.0.2.1:1")});
    auto got = collect(pool, 5, 3000ms);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    ASSERT_EQ(got.size(), 5u);
    for (auto& [id, comp] : got) {
        EXPECT_GE(id, 10u);
        ASSERT_TRUE(comp.result.endpoint) << comp.result.error;
        EXPECT_EQ(comp.result.endpoint->str(), "192.0.2.5:5");
    }
    EXPECT_LE(pool.thread_count(), 8u);
    EXPECT_GE(pool.thread_count(), 3u);
}

TEST(ConnectPool, CapLimitsThreadsAndQueuedJobsStillRun) {
    ConnectPool pool(1, 2);
    std::shared_ptr<Connector> slow = make_exec_connector("sleep 0.3; echo 192.0.2.6:6", 5s);
    for (uint64_t id = 1; id <= 6; ++id) pool.submit({id, slow, request("192.0.2.1:1")});
    EXPECT_EQ(pool.thread_count(), 2u);
    auto got = collect(pool, 6, 5000ms);
    EXPECT_EQ(got.size(), 6u);
}

TEST(ConnectPool, DestructorStopsRunningExecConnectors) {
    const std::string pidfile = "/tmp/nb-pool-test-" + std::to_string(getpid());
    auto start = std::chrono::steady_clock::now();
    {
        ConnectPool pool(1);
        pool.submit({1, make_exec_connector("echo $$ > " + pidfile + "; sleep 30", 60s),
                     request("192.0.2.1:1")});
        for (int i = 0; i < 100 && !std::ifstream(pidfile); ++i) std::this_thread::sleep_for(20ms);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    pid_t shell = 0;
    std::ifstream(pidfile) >> shell;
    unlink(pidfile.c_str());
    ASSERT_GT(shell, 0);
    EXPECT_FALSE(std::ifstream("/proc/" + std::to_string(shell) + "/stat")) << "shell still there";
}

TEST(ConnectPool, RejectsBadArguments) {
    EXPECT_THROW(ConnectPool(0), std::invalid_argument);
    EXPECT_THROW(ConnectPool(4, 2), std::invalid_argument);
    ConnectPool pool(1);
    EXPECT_THROW(pool.submit({1, nullptr, request("192.0.2.1:1")}), std::invalid_argument);
}

}  // namespace
}  // namespace nb
