// What the manager counts for /metrics (agent/lazy/lazy_counters.hpp), the per-state
// counts it keeps as peers change, and `peer wake`: against the fakes, no kernel.
#include <gtest/gtest.h>

#include <array>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;

class LazyCountersTest : public LazyFixture {
  protected:
    // The counts as a walk over every peer's status finds them.
    std::array<uint64_t, 3> walked() {
        std::array<uint64_t, 3> n{};
        PeerStatus s;
        auto next = mgr->peer_statuses();
        while (next(s)) ++n[static_cast<size_t>(s.state)];
        return n;
    }
    void expect_counts_agree(const char* when) {
        const auto w = walked();
        for (PeerState st : {PeerState::Idle, PeerState::Connecting, PeerState::Connected})
            EXPECT_EQ(mgr->count(st), w[static_cast<size_t>(st)]) << when << ": " << state_name(st);
    }
    uint64_t wakes(WakeReason r) { return mgr->counters().wakes[static_cast<size_t>(r)]; }
    uint64_t failures(WakeFailure f) { return mgr->counters().failures[static_cast<size_t>(f)]; }
    uint64_t idles(IdleReason r) { return mgr->counters().idles[static_cast<size_t>(r)]; }
};

TEST_F(LazyCountersTest, StateCountsFollowEveryChange) {
    make();
    install3();
    expect_counts_agree("installed");
    EXPECT_EQ(mgr->count(PeerState::Idle), 3u);
    mgr->on_held_packet(0, pkt(1), now());
    expect_counts_agree("waking");
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    mgr->on_rx_wake(0, now());
    expect_counts_agree("connected");
    EXPECT_EQ(mgr->count(PeerState::Connected), 1u);
    mgr->on_rx_wake(1, now());
    expect_counts_agree("remote");
    // A map without peer 1 (Connected) and with a new one.
    mgr->apply({spec(2, "192.0.2.2:51820"), spec(3, nullptr), spec(4, "192.0.2.4:51820")}, {},
               false);
    expect_counts_agree("applied");
    EXPECT_EQ(mgr->count(PeerState::Idle) + mgr->count(PeerState::Connecting) +
                  mgr->count(PeerState::Connected),
              3u);
    mgr->make_idle(key(2), "operator");
    expect_counts_agree("made idle");
    mgr->restore_all();
    expect_counts_agree("restored");
}

TEST_F(LazyCountersTest, AWakeCountsItsReasonItsPacketsAndItsTime) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_held_packet(0, pkt(2), now());
    EXPECT_EQ(wakes(WakeReason::Packet), 1u);  // one wake, two packets
    EXPECT_EQ(mgr->counters().packets_held, 2u);
    EXPECT_EQ(mgr->counters().packets_replayed, 0u);
    clock_ns += 3'000'000;
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    EXPECT_EQ(mgr->counters().packets_replayed, 2u);
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(mgr->wake_phases().total.count, 1u);
    EXPECT_EQ(mgr->wake_phases().total.sum_ns, 3'000'000u);
    mgr->on_rx_wake(1, now());
    EXPECT_EQ(wakes(WakeReason::Remote), 1u);
    EXPECT_EQ(wakes(WakeReason::Packet), 1u);
    // The remote's wake took no time of ours.
    EXPECT_EQ(mgr->wake_phases().total.count, 1u);
}

TEST_F(LazyCountersTest, FailuresCountByCause) {
    LazyOptions o = options();
    o.max_held = 1;
    make(o);
    install3();
    // Connector error, with one packet over the hold limit dropped.
    mgr->on_held_packet(2, pkt(1), now());
    mgr->on_held_packet(2, pkt(2), now());
    EXPECT_EQ(mgr->counters().packets_dropped, 1u);
    ConnectPool::Completion c;
    c.job_id = queue.jobs[0].job_id;
    c.result.error = "no endpoint";
    mgr->on_connect_done(c);
    EXPECT_EQ(failures(WakeFailure::Connector), 1u);
    EXPECT_EQ(mgr->counters().packets_dropped, 2u);  // and the one it held
    // WireGuard refusing the endpoint.
    mgr->on_held_packet(0, pkt(1), now());
    wg.fail_next = true;
    mgr->on_connect_done(ok(queue.jobs[1].job_id, "192.0.2.1:51820"));
    EXPECT_EQ(failures(WakeFailure::WireGuard), 1u);
    // No handshake in time.
    mgr->on_held_packet(1, pkt(1), now());
    mgr->on_connect_done(ok(queue.jobs[2].job_id, "192.0.2.2:51820"));
    wait_until(now() + to_ns(o.connect_timeout) + 1);
    mgr->tick(now());
    EXPECT_EQ(failures(WakeFailure::HandshakeTimeout), 1u);
    EXPECT_EQ(failures(WakeFailure::ConnectorTimeout), 0u);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Idle);
    // A failure retried (WireGuard's undo) is counted once.
    EXPECT_EQ(failures(WakeFailure::Connector) + failures(WakeFailure::WireGuard) +
                  failures(WakeFailure::HandshakeTimeout),
              3u);
}

TEST_F(LazyCountersTest, AConnectorThatNeverAnswersTimesOut) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    wait_until(now() + to_ns(std::chrono::milliseconds(10001)));
    mgr->tick(now());
    EXPECT_EQ(failures(WakeFailure::ConnectorTimeout), 1u);
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
}

TEST_F(LazyCountersTest, OperatorIdlesCount) {
    make();
    install3();
    mgr->on_rx_wake(0, now());
    mgr->make_idle(key(1), "operator");
    mgr->make_idle(key(1), "operator");  // already Idle: nothing happened
    EXPECT_EQ(idles(IdleReason::Operator), 1u);
}

TEST_F(LazyCountersTest, ANewThresholdSendsQuietPeersIdleAtTheNextTick) {
    make();  // 15 min by default
    install3();
    mgr->on_rx_wake(0, now());
    const uint64_t t = now();
    mgr->tick(t + 61'000'000'000);  // a minute of silence: below 15 min
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connected);
    mgr->set_inactivity_threshold(std::chrono::minutes(1));
    mgr->tick(t + 61'100'000'000);
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    EXPECT_EQ(idles(IdleReason::Inactivity), 1u);
    EXPECT_EQ(mgr->status(false).inactivity_threshold_ms, 60'000);
}

TEST_F(LazyCountersTest, APeersOwnThresholdWinsOverTheAgents) {
    LazyOptions o = options();
    o.inactivity_threshold = std::chrono::minutes(10);
    make(o);
    auto quick = spec(1, "192.0.2.1:51820");
    quick.inactivity_threshold = std::chrono::seconds(30);
    auto slow = spec(2, "192.0.2.2:51820");
    slow.inactivity_threshold = std::chrono::hours(1);
    mgr->install({quick, slow, spec(3, "192.0.2.3:51820")});
    for (uint32_t id : {0u, 1u, 2u}) mgr->on_rx_wake(id, now());
    const uint64_t t = now();
    mgr->tick(t + 31'000'000'000);
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);  // its own 30 s
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connected);
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Connected);
    mgr->tick(t + 601'000'000'000);
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Idle);       // the agent's 10 min
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connected);  // its own hour
    // A new map changing only the threshold is a change of that peer.
    slow.inactivity_threshold = std::chrono::seconds(20);
    MapDiff d = mgr->apply({quick, slow, spec(3, "192.0.2.3:51820")}, {}, false);
    EXPECT_EQ(d.changed, 1u);
    mgr->tick(t + 700'000'000'000);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Idle);
}

TEST_F(LazyCountersTest, PeerWakeConnectsAnIdlePeerThroughItsConnector) {
    make();
    install3();
    EXPECT_TRUE(mgr->wake(key(1)));
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connecting);
    ASSERT_EQ(queue.jobs.size(), 1u);
    EXPECT_EQ(queue.jobs[0].req.configured_endpoint.value_or(""), "192.0.2.1:51820");
    EXPECT_EQ(wakes(WakeReason::Operator), 1u);
    auto* t = find_transition("Idle", "Connecting");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ((*t)["reason"], "operator");
    EXPECT_FALSE(mgr->wake(key(1)));  // already waking
    EXPECT_EQ(queue.jobs.size(), 1u);
    EXPECT_THROW(mgr->wake(key(9)), std::invalid_argument);
}

TEST_F(LazyCountersTest, PeerWakeStartsTheHandshakeWithAKeepaliveUntilConnected) {
    make();
    install3();
    ASSERT_TRUE(mgr->wake(key(2)));  // no keepalive of its own, and no packet to send
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.2:51820"));
    const auto& set = wg.updates.back().peers;
    ASSERT_EQ(set.size(), 1u);
    EXPECT_EQ(set[0].persistent_keepalive, std::optional<uint16_t>(LazyManager::kPrewarmKeepalive));
    mgr->on_rx_wake(1, now());  // the handshake's proof
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connected);
    const auto& off = wg.updates.back().peers;
    ASSERT_EQ(off.size(), 1u);
    EXPECT_TRUE(off[0].update_only);
    EXPECT_EQ(off[0].persistent_keepalive, std::optional<uint16_t>(0));
    // A packet's wake of the same peer later sets no keepalive.
    mgr->make_idle(key(2), "operator");
    mgr->on_held_packet(1, pkt(1), now());
    mgr->on_connect_done(ok(queue.jobs.back().job_id, "192.0.2.2:51820"));
    EXPECT_EQ(wg.updates.back().peers[0].persistent_keepalive, std::optional<uint16_t>(0));
}

TEST_F(LazyCountersTest, PeerWakeIgnoresABackoff) {
    make();
    install3();
    mgr->on_held_packet(2, pkt(1), now());
    ConnectPool::Completion c;
    c.job_id = queue.jobs[0].job_id;
    c.result.error = "no endpoint";
    mgr->on_connect_done(c);
    ASSERT_GT(mgr->find(key(3))->w().retry_after_ns, now());
    EXPECT_TRUE(mgr->wake(key(3)));
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Connecting);
}

TEST_F(LazyCountersTest, APeerAddedToAConnectedGroupWakesAtOnce) {
    make();
    auto a = spec(1, "192.0.2.1:51820");
    a.groups = {"db"};
    mgr->install({a, spec(2, "192.0.2.2:51820")});
    mgr->on_rx_wake(0, now());  // the group is awake
    auto joiner = spec(3, "192.0.2.3:51820");
    joiner.groups = {"db"};
    auto other = spec(4, "192.0.2.4:51820");
    other.groups = {"web"};  // a group with nobody awake
    auto moved = spec(2, "192.0.2.2:51820");
    moved.groups = {"db"};  // an existing peer moved into the group
    mgr->apply({a, moved, joiner, other}, {}, false);
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Connecting);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connecting);
    EXPECT_EQ(mgr->find(key(4))->state, PeerState::Idle);
    EXPECT_EQ(wakes(WakeReason::Group), 2u);
    auto* t = find_transition("Idle", "Connecting");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ((*t)["reason"], "group db");
}

TEST_F(LazyCountersTest, PeerWakeOfAGroupStartsEveryIdleMember) {
    make();
    auto a = spec(1, "192.0.2.1:51820");
    auto b = spec(2, "192.0.2.2:51820");
    auto other = spec(3, "192.0.2.3:51820");
    a.groups = {"db"};
    b.groups = {"db"};
    mgr->install({a, b, other});
    EXPECT_EQ(mgr->wake_group("db"), 2u);
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connecting);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connecting);
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Idle);
    EXPECT_EQ(mgr->wake_group("db"), 0u);
    EXPECT_THROW(mgr->wake_group("nope"), std::invalid_argument);
}

}  // namespace
}  // namespace nb
