// WgHealth against a stand-in wireguard-go on a real UNIX socket (unprivileged): the
// device it watches is "lo", which every network namespace has.
#include <gtest/gtest.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/wg/wg_health.hpp"

namespace nb {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string kDump = "listen_port=51820\nerrno=0\n\n";

// Serves each connection on its own thread, as wireguard-go does: connection i waits
// delays[i] (the last one for later connections) before it answers; a get gets kDump,
// a set `set_reply`. Records when each request arrived and each answer left.
class StandIn {
  public:
    explicit StandIn(std::vector<std::chrono::milliseconds> delays) : delays_(std::move(delays)) {
        char tmpl[] = "/tmp/nbt-health-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::strcpy(sun.sun_path, (dir_ + "/lo.sock").c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0)
            throw std::runtime_error("bind failed");
    }
    ~StandIn() {
        stop_ = true;
        if (acceptor_.joinable()) acceptor_.join();
        for (auto& t : conns_) t.join();
        ::close(fd_);
        std::filesystem::remove_all(dir_);
    }
    // Without listen() the socket refuses connections, as a dead daemon's does.
    void listen() {
        ::listen(fd_, 16);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    const std::string& dir() const { return dir_; }
    std::string set_reply = "errno=0\n\n";  // set before the first set arrives
    struct Seen {
        std::string request;
        Clock::time_point arrived, answered;
    };
    // In the order the requests arrived (threads record them as they finish).
    std::vector<Seen> seen() {
        std::lock_guard lock(mu_);
        auto v = seen_;
        std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.arrived < b.arrived; });
        return v;
    }

  private:
    void accept_loop() {
        for (size_t i = 0; !stop_;) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 10) <= 0) continue;
            int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) continue;
            auto delay = delays_[std::min(i, delays_.size() - 1)];
            conns_.emplace_back([this, conn, delay] { serve(conn, delay); });
            ++i;
        }
    }
    void serve(int conn, std::chrono::milliseconds delay) {
        std::string req;
        char buf[4096];
        while (req.find("\n\n") == std::string::npos && !stop_) {
            pollfd p{conn, POLLIN, 0};
            if (::poll(&p, 1, 10) <= 0) continue;
            ssize_t n = ::read(conn, buf, sizeof buf);
            if (n <= 0) break;
            req.append(buf, static_cast<size_t>(n));
        }
        Seen s{req, Clock::now(), {}};
        auto until = Clock::now() + delay;
        while (!stop_ && Clock::now() < until) std::this_thread::sleep_for(5ms);
        const std::string reply = req.starts_with("get=1") ? kDump : set_reply;
        // Stamped before the write: once it is written, the client may send its next
        // request before this thread runs again.
        s.answered = Clock::now();
        (void)!::write(conn, reply.data(), reply.size());
        ::close(conn);
        std::lock_guard lock(mu_);
        seen_.push_back(s);
    }

    std::vector<std::chrono::milliseconds> delays_;
    std::string dir_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread acceptor_;
    std::vector<std::thread> conns_;
    std::mutex mu_;
    std::vector<Seen> seen_;
};

WgHealth::Options options(const std::string& dir) {
    WgHealth::Options o;
    o.interface = "lo";
    o.socket_dir = dir;
    o.timeout = 100ms;
    o.check_every = 20ms;
    return o;
}

// Waits for the event fd, then takes the events.
std::vector<WgHealthEvent> wait_events(WgHealth& h, std::chrono::milliseconds limit) {
    pollfd p{h.event_fd(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(limit.count())) <= 0) return {};
    return h.take_events();
}

TEST(WgHealth, StoppedDaemonFailsFastUntilItAnswersAgain) {
    // The first request waits 800 ms (a stopped daemon); later ones are answered at once.
    StandIn daemon({800ms, 0ms});
    daemon.listen();
    WgHealth h(options(daemon.dir()));
    EXPECT_TRUE(h.available());

    DeviceUpdate u;
    u.listen_port = 51820;
    auto t0 = Clock::now();
    try {
        h.set_device(u);
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(e.fault, WgFault::NoAnswer);
        EXPECT_EQ(std::string(e.what()).rfind("WireGuard not answering: ", 0), 0u) << e.what();
    }
    EXPECT_LT(Clock::now() - t0, 400ms);
    EXPECT_FALSE(h.available());
    WgHealthStatus st = h.status();
    EXPECT_EQ(st.state, WgHealthState::NotAnswering);
    EXPECT_NE(st.error.find("no complete reply within 100 ms"), std::string::npos) << st.error;
    EXPECT_FALSE(st.since.empty());

    // From now on at once, without a connection.
    t0 = Clock::now();
    EXPECT_THROW(h.get_device(), WgError);
    EXPECT_LT(Clock::now() - t0, 20ms);

    auto events = wait_events(h, 3000ms);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, WgHealthEvent::Kind::Answering);
    EXPECT_EQ(events[0].device.listen_port, 51820);
    EXPECT_EQ(events[0].ifindex, static_cast<int>(::if_nametoindex("lo")));
    // The probe read WireGuard only once the request that timed out had its answer:
    // what it read already has that request's effect.
    // The stand-in records a request after its answer has left: give it a moment.
    auto seen = daemon.seen();
    for (int i = 0; i < 200 && seen.size() < 2; ++i) {
        std::this_thread::sleep_for(10ms);
        seen = daemon.seen();
    }
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_TRUE(seen[0].request.starts_with("set=1"));
    EXPECT_TRUE(seen[1].request.starts_with("get=1"));
    EXPECT_GE(seen[1].arrived, seen[0].answered);
    EXPECT_FALSE(h.available());  // until the loop has made WireGuard agree

    h.resume(events[0].ifindex);
    EXPECT_TRUE(h.available());
    EXPECT_EQ(h.status().state, WgHealthState::Ok);
    EXPECT_EQ(h.get_device().listen_port, 51820);
}

TEST(WgHealth, NobodyOnTheSocketIsLost) {
    StandIn dead({0ms});  // bound, never listening: connections are refused
    WgHealth h(options(dead.dir()));
    try {
        h.get_device();
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(e.fault, WgFault::Gone);
        EXPECT_EQ(std::string(e.what()).rfind("WireGuard lost: ", 0), 0u) << e.what();
    }
    auto events = wait_events(h, 1000ms);
    ASSERT_EQ(events.size(), 1u);  // once, however often the probe finds it so
    EXPECT_EQ(events[0].kind, WgHealthEvent::Kind::Lost);
    EXPECT_NE(events[0].reason.find("Connection refused"), std::string::npos) << events[0].reason;
    EXPECT_EQ(h.status().state, WgHealthState::Lost);
    std::this_thread::sleep_for(100ms);
    EXPECT_TRUE(h.take_events().empty());

    // A daemon that comes back (the operator started it again) is found by the probe.
    dead.listen();
    events = wait_events(h, 3000ms);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].kind, WgHealthEvent::Kind::Answering);
}

TEST(WgHealth, AnErrorAnswerIsNotAFault) {
    // A rejected request is the request's problem: WireGuard answered, it stays available.
    StandIn daemon({0ms});
    daemon.set_reply = "errno=-22\n\n";
    daemon.listen();
    WgHealth h(options(daemon.dir()));
    try {
        h.set_device(DeviceUpdate{});
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(e.fault, WgFault::Rejected);
        EXPECT_NE(std::string(e.what()).find("errno=-22"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(h.available());
    EXPECT_EQ(h.status().state, WgHealthState::Ok);
    EXPECT_EQ(h.get_device().listen_port, 51820);
}

}  // namespace
}  // namespace nb
