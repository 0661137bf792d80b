// The latencies of a wake's phases and of idle transitions (agent/lazy/wake_phases.hpp),
// on the fixture's clock: the fakes move it as WireGuard, the connector or a re-injection
// would take time, and each histogram holds exactly that.
#include <gtest/gtest.h>

#include <string>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;

constexpr uint64_t kMs = 1'000'000ull;
constexpr uint64_t kSec = 1000 * kMs;

// One duration recorded, exactly `ns`.
::testing::AssertionResult holds_once(const HistogramSnapshot& h, uint64_t ns) {
    if (h.count != 1) return ::testing::AssertionFailure() << "count " << h.count << ", not 1";
    if (h.min_ns != ns || h.max_ns != ns || h.sum_ns != ns)
        return ::testing::AssertionFailure() << "holds " << h.min_ns << " ns, not " << ns;
    return ::testing::AssertionSuccess();
}

class WakePhasesTest : public LazyFixture {
  protected:
    // Peer 1 (id 0) woken by two packets at `t`; its connector answers 3 ms later,
    // WireGuard takes 2 ms to set the endpoint, each re-injection 1 ms, and the first
    // reply comes 40 ms after the replay.
    uint64_t wake_through_every_phase() {
        make();
        install3();
        const uint64_t t = now();
        mgr->on_held_packet(0, pkt(1), t);
        mgr->on_held_packet(0, pkt(2), t);
        clock_ns += 3 * kMs;
        wg.on_set = [this] { clock_ns += 2 * kMs; };
        sink.on_inject = [this] { clock_ns += kMs; };
        mgr->on_connect_done(ok(queue.jobs.at(0).job_id, "192.0.2.1:51820"));
        wg.on_set = nullptr;
        sink.on_inject = nullptr;
        clock_ns += 40 * kMs;
        mgr->on_rx_wake(0, now());
        EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connected);
        return t;
    }
};

TEST_F(WakePhasesTest, AWakeDrivenThroughItsPhasesRecordsEachPhaseOnce) {
    wake_through_every_phase();
    WakePhases w = mgr->wake_phases();
    EXPECT_TRUE(holds_once(w.connector, 3 * kMs));
    EXPECT_TRUE(holds_once(w.endpoint, 2 * kMs));
    EXPECT_TRUE(holds_once(w.replay, 2 * kMs));  // two held packets
    EXPECT_TRUE(holds_once(w.first_reply, 40 * kMs));
    EXPECT_TRUE(holds_once(w.total, 47 * kMs));
    EXPECT_EQ(w.failed.count, 0u);
    EXPECT_EQ(w.going_idle.count, 0u);
    EXPECT_EQ(w.connected_for.count, 0u);
    // The total is what status shows as the wake's latency.
    EXPECT_DOUBLE_EQ(mgr->find(key(1))->shown_wake_ms(), 47.0);
}

TEST_F(WakePhasesTest, GoingIdleRecordsTheRequestAndHowLongThePeerWasConnected) {
    wake_through_every_phase();
    clock_ns += 60 * kSec;
    wg.on_set = [this] { clock_ns += 7 * kMs; };
    mgr->make_idle(key(1), "operator");
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    WakePhases w = mgr->wake_phases();
    EXPECT_TRUE(holds_once(w.going_idle, 7 * kMs));
    // Connected at the first reply; Idle once WireGuard took the remove and re-add.
    EXPECT_TRUE(holds_once(w.connected_for, 60 * kSec + 7 * kMs));
    EXPECT_EQ(w.failed.count, 0u);
}

TEST_F(WakePhasesTest, AFailedWakeRecordsTheTimeToFailureAndNoLaterPhase) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    clock_ns += 4 * kMs;
    mgr->on_connect_done(ok(queue.jobs.at(0).job_id, "192.0.2.1:51820"));
    // No reply, no handshake: the wake's deadline (connect_timeout, 10 s) ends it.
    clock_ns += 10 * kSec;
    wg.on_set = [this] { clock_ns += 5 * kMs; };
    mgr->tick(now());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    WakePhases w = mgr->wake_phases();
    EXPECT_TRUE(holds_once(w.connector, 4 * kMs));
    EXPECT_TRUE(holds_once(w.failed, 10 * kSec + 4 * kMs));
    EXPECT_TRUE(holds_once(w.going_idle, 5 * kMs));
    EXPECT_EQ(w.first_reply.count, 0u);
    EXPECT_EQ(w.total.count, 0u);
    EXPECT_EQ(w.connected_for.count, 0u);  // it never was
}

TEST_F(WakePhasesTest, AConnectorErrorIsAFailureWithoutAConnectorAnswer) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    clock_ns += 6 * kMs;
    ConnectPool::Completion c;
    c.job_id = queue.jobs.at(0).job_id;
    c.result.error = "no route";
    mgr->on_connect_done(c);
    WakePhases w = mgr->wake_phases();
    EXPECT_TRUE(holds_once(w.failed, 6 * kMs));
    EXPECT_EQ(w.connector.count, 0u);
}

TEST_F(WakePhasesTest, ARemoteThatAnswersBeforeTheConnectorCountsInTheTotalOnly) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    clock_ns += 9 * kMs;
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connected);
    WakePhases w = mgr->wake_phases();
    EXPECT_TRUE(holds_once(w.total, 9 * kMs));
    EXPECT_EQ(w.connector.count, 0u);
    EXPECT_EQ(w.endpoint.count, 0u);
    EXPECT_EQ(w.first_reply.count, 0u);
}

TEST_F(WakePhasesTest, AWakeTheRemoteStartedCountsNowhere) {
    make();
    install3();
    clock_ns += 5 * kMs;
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connected);
    WakePhases w = mgr->wake_phases();
    EXPECT_EQ(w.total.count, 0u);
    EXPECT_EQ(w.connector.count, 0u);
}

TEST_F(WakePhasesTest, ABatchOfAnswersIsOneSetRequestForEachPeersEndpointPhase) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_held_packet(1, pkt(2), now());
    clock_ns += 3 * kMs;
    wg.on_set = [this] { clock_ns += 2 * kMs; };
    const ConnectPool::Completion done[] = {ok(queue.jobs.at(0).job_id, "192.0.2.1:51820"),
                                            ok(queue.jobs.at(1).job_id, "192.0.2.2:51820")};
    mgr->on_connect_batch(done);
    WakePhases w = mgr->wake_phases();
    EXPECT_EQ(w.connector.count, 2u);
    EXPECT_EQ(w.connector.max_ns, 3 * kMs);
    EXPECT_EQ(w.endpoint.count, 2u);
    EXPECT_EQ(w.endpoint.min_ns, 2 * kMs);  // both waited for the one request
    EXPECT_EQ(w.endpoint.max_ns, 2 * kMs);
}

TEST_F(WakePhasesTest, RenderWritesALinePerHistogram) {
    wake_through_every_phase();
    const std::string text = render_wake_phases(mgr->wake_phases());
    EXPECT_NE(text.find("wake connector: count=1 "), std::string::npos) << text;
    EXPECT_NE(text.find("wake total: count=1 "), std::string::npos) << text;
    EXPECT_NE(text.find("p50=47.0ms"), std::string::npos) << text;
    EXPECT_NE(text.find("idle connected-for: count=0\n"), std::string::npos) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 8);
}

}  // namespace
}  // namespace nb
