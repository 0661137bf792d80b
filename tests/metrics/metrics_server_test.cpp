// The metrics server over real HTTP on loopback: a scrape gets what the "loop" (a thread
// of the test) answers, a loop that never answers is a 503, and bad listen addresses
// and ports in use are refused by name.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <thread>

#include "agent/metrics/metrics_server.hpp"

#ifdef NB_HAVE_HTTPLIB
#include <httplib.h>
#endif

namespace nb {
namespace {

TEST(ListenAddress, ParsesV4AndBracketedV6) {
    ListenAddress a = parse_listen_address("127.0.0.1:9590");
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 9590);
    EXPECT_EQ(a.text(), "127.0.0.1:9590");
    ListenAddress b = parse_listen_address("[::1]:0");
    EXPECT_EQ(b.host, "::1");
    EXPECT_EQ(b.port, 0);
    EXPECT_EQ(b.text(), "[::1]:0");
}

TEST(ListenAddress, RefusesWhatIsNotAnAddressAndPort) {
    for (const char* bad : {"", "9590", "localhost:9590", "127.0.0.1:", "127.0.0.1:65536",
                            "127.0.0.1:http", "::1:9590", "[::1]9590", "1.2.3:80"}) {
        EXPECT_THROW(parse_listen_address(bad), std::invalid_argument) << bad;
    }
    try {
        parse_listen_address("localhost:9590");
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("'localhost' is not an IP address"), std::string::npos)
            << e.what();
    }
}

#ifdef NB_HAVE_HTTPLIB

// Plays the event loop: answers every wake-up of the server's eventfd with a snapshot
// whose idle count says how many it answered.
class Loop {
  public:
    explicit Loop(MetricsServer& m) : m_(m), t_([this] { run(); }) {}
    ~Loop() {
        stop_ = true;
        t_.join();
    }

  private:
    void run() {
        uint64_t n = 0;
        while (!stop_) {
            pollfd p{m_.event_fd(), POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            MetricsSnapshot s;
            s.interface = "wgt";
            s.status.idle = ++n;
            m_.answer(std::move(s));
        }
    }
    MetricsServer& m_;
    std::atomic<bool> stop_{false};
    std::thread t_;
};

TEST(MetricsServer, AScrapeGetsAFreshSnapshotEachTime) {
    MetricsServer m(parse_listen_address("127.0.0.1:0"));
    ASSERT_NE(m.address().port, 0);
    Loop loop(m);
    httplib::Client c("127.0.0.1", m.address().port);
    for (int i = 1; i <= 3; ++i) {
        auto r = c.Get("/metrics");
        ASSERT_TRUE(r) << httplib::to_string(r.error());
        EXPECT_EQ(r->status, 200);
        EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
        const std::string want =
            "nbagent_peers{interface=\"wgt\",state=\"idle\"} " + std::to_string(i) + "\n";
        EXPECT_NE(r->body.find(want), std::string::npos) << r->body.substr(0, 400);
    }
    EXPECT_EQ(c.Get("/nothing")->status, 404);
}

TEST(MetricsServer, ALoopThatNeverAnsweredIsA503) {
    MetricsServer m(parse_listen_address("127.0.0.1:0"), std::chrono::milliseconds(50));
    httplib::Client c("127.0.0.1", m.address().port);
    auto r = c.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
}

TEST(MetricsServer, ABusyLoopGetsTheLastSnapshotWithItsAge) {
    MetricsServer m(parse_listen_address("127.0.0.1:0"), std::chrono::milliseconds(50));
    MetricsSnapshot s;
    s.interface = "wgt";
    m.answer(s);  // one answer, then the loop is "busy"
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    httplib::Client c("127.0.0.1", m.address().port);
    auto r = c.Get("/metrics");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
    const std::string age = "nbagent_metrics_snapshot_age_seconds{interface=\"wgt\"} ";
    const size_t at = r->body.find(age);
    ASSERT_NE(at, std::string::npos);
    EXPECT_GE(std::stod(r->body.substr(at + age.size())), 0.1);
}

TEST(MetricsServer, APortInUseIsRefusedByName) {
    MetricsServer first(parse_listen_address("127.0.0.1:0"));
    const ListenAddress taken = first.address();
    try {
        MetricsServer second(taken);
        FAIL() << "a second server listened on " << taken.text();
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find(taken.text()), std::string::npos) << e.what();
    }
}

#endif

}  // namespace
}  // namespace nb
