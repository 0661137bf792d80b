// `status -d` filters in the manager: each selects exactly the peers it names.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;

class PeerFilterTest : public LazyFixture {
  protected:
    // Peers 1..4 (10.0.0.N/32); peer 5 routes 10.0.0.0/24 and peer 6 10.0.0.0/16.
    void install_six() {
        std::vector<PeerSpec> v = {spec(1, "192.0.2.1:51820"), spec(2, "192.0.2.2:51820"),
                                   spec(3, nullptr),           spec(4, "192.0.2.4:51820"),
                                   spec(5, "192.0.2.5:51820"), spec(6, "192.0.2.6:51820")};
        v[4].wg.allowed_ips = {*IpPrefix::parse("10.0.0.0/24")};
        v[5].wg.allowed_ips = {*IpPrefix::parse("10.0.0.0/16"), *IpPrefix::parse("fd00::/64")};
        v[5].connector = "exec:echo 192.0.2.6:51820";
        mgr->install(std::move(v));
    }
    std::set<std::string> keys(const PeerFilter& f) {
        std::set<std::string> out;
        PeerStatus s;
        auto next = mgr->peer_statuses(f);
        while (next(s)) out.insert(s.public_key);
        return out;
    }
    static std::string k(uint8_t n) { return key(n).base64(); }
};

TEST_F(PeerFilterTest, EachFilterSelectsExactlyItsPeers) {
    make();
    install_six();
    mgr->on_held_packet(0, pkt(1), now());  // 1 Connecting
    mgr->on_rx_wake(1, now());              // 2 Connected
    mgr->on_held_packet(2, pkt(1), now());  // 3 fails: its connector has no endpoint
    ConnectPool::Completion c;
    c.job_id = queue.jobs[1].job_id;
    c.result.error = "no endpoint";
    mgr->on_connect_done(c);

    EXPECT_EQ(keys({}).size(), 6u);
    PeerFilter f;
    f.state = PeerState::Connecting;
    EXPECT_EQ(keys(f), std::set<std::string>{k(1)});
    f.state = PeerState::Connected;
    EXPECT_EQ(keys(f), std::set<std::string>{k(2)});
    f.state = PeerState::Idle;
    EXPECT_EQ(keys(f), (std::set<std::string>{k(3), k(4), k(5), k(6)}));

    PeerFilter failing;
    failing.failing = true;
    EXPECT_EQ(keys(failing), std::set<std::string>{k(3)});
    failing.state = PeerState::Connected;  // both must hold
    EXPECT_TRUE(keys(failing).empty());

    PeerFilter whole;
    whole.key_prefix = k(4);
    EXPECT_EQ(keys(whole), std::set<std::string>{k(4)});
    whole.key_prefix = key(9).base64();
    EXPECT_TRUE(keys(whole).empty());
    PeerFilter prefix;
    prefix.key_prefix = k(5).substr(0, 3);  // "BQU": only peer 5's key starts so
    EXPECT_EQ(keys(prefix), std::set<std::string>{k(5)});
}

TEST_F(PeerFilterTest, AnAddressSelectsThePeerThatRoutesItLongestPrefixFirst) {
    make();
    install_six();
    PeerFilter f;
    f.ip = IpAddr::parse("10.0.0.3");  // /32 of peer 3 beats /24 and /16
    EXPECT_EQ(keys(f), std::set<std::string>{k(3)});
    f.ip = IpAddr::parse("10.0.0.77");  // /24 beats /16
    EXPECT_EQ(keys(f), std::set<std::string>{k(5)});
    f.ip = IpAddr::parse("10.0.9.1");
    EXPECT_EQ(keys(f), std::set<std::string>{k(6)});
    f.ip = IpAddr::parse("fd00::1234");
    EXPECT_EQ(keys(f), std::set<std::string>{k(6)});
    f.ip = IpAddr::parse("10.1.0.1");
    EXPECT_TRUE(keys(f).empty());
    f.ip = IpAddr::parse("10.0.0.3");
    f.state = PeerState::Connected;  // peer 3 routes it, but is Idle
    EXPECT_TRUE(keys(f).empty());
    f.state.reset();
    f.key_prefix = k(4);  // another peer than the address's
    EXPECT_TRUE(keys(f).empty());
}

TEST_F(PeerFilterTest, StatusSaysWhereAWakeGoesAndSinceWhen) {
    make();
    install_six();
    const int64_t installed = unix_now();
    clock_ns += 5'000'000'000;  // 5 s later
    mgr->on_rx_wake(1, now());
    PeerFilter f;
    f.key_prefix = k(1);
    PeerStatus s;
    auto next = mgr->peer_statuses(f);
    ASSERT_TRUE(next(s));
    EXPECT_EQ(s.wake_endpoint, "192.0.2.1:51820");
    EXPECT_EQ(s.endpoint, "");
    // Idle since the install, 5 s ago on the manager's clock (the fixture's unix time
    // follows it, so the time is exact).
    EXPECT_EQ(s.state_since_ms, installed);
    f.key_prefix = k(2);
    next = mgr->peer_statuses(f);
    ASSERT_TRUE(next(s));
    EXPECT_EQ(s.state, PeerState::Connected);
    EXPECT_EQ(s.state_since_ms, unix_now());
    f.key_prefix = k(6);
    next = mgr->peer_statuses(f);
    ASSERT_TRUE(next(s));
    EXPECT_EQ(s.wake_endpoint, "exec");
    f.key_prefix = k(3);
    next = mgr->peer_statuses(f);
    ASSERT_TRUE(next(s));
    EXPECT_EQ(s.wake_endpoint, "");
}

}  // namespace
}  // namespace nb
