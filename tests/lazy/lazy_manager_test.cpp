// The lazy state machine against fakes of its ports (tests/lazy/fakes.hpp): pure
// logic, no kernel.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/control/protocol.hpp"
#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;  // the fakes and key()/spec()

class LazyManagerTest : public LazyFixture {
  protected:
    // Admission at one wake a second, and peer 1 took the bucket's one token at `t`.
    uint64_t bucket_spent() {
        LazyOptions o = options();
        o.wake_rate = 1;
        make(o);
        install3();
        const uint64_t t = now();
        mgr->on_held_packet(0, pkt(1), t);
        return t;
    }
};

TEST_F(LazyManagerTest, InstallsEveryPeerIdleWithoutEndpointOrKeepalive) {
    make();
    install3();
    auto st = mgr->status(true);
    EXPECT_EQ(st.idle, 3u);
    EXPECT_EQ(st.connected, 0u);
    ASSERT_EQ(wg.updates.size(), 1u);
    for (const auto& op : wg.updates[0].peers) {
        EXPECT_FALSE(op.endpoint.has_value());
        if (!op.remove) {
            EXPECT_EQ(op.persistent_keepalive.value_or(99), 0);
        }
    }
    // The datapath holds before WireGuard loses any endpoint.
    EXPECT_LT(log.find("dp install"), log.find("wg"));
    for (auto& [id, m] : hold.mode) EXPECT_EQ(m, SlotMode::Hold) << id;
}

TEST_F(LazyManagerTest, FirstPacketWakesPeerAndReplaysInOrderAfterEndpoint) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_held_packet(0, pkt(2), now());
    mgr->on_held_packet(0, pkt(3), now());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connecting);
    ASSERT_EQ(queue.jobs.size(), 1u);  // one wake, not one per packet
    EXPECT_EQ(queue.jobs[0].req.configured_endpoint.value_or(""), "192.0.2.1:51820");
    EXPECT_TRUE(sink.sent.empty());
    ASSERT_FALSE(trace.empty());
    EXPECT_EQ(trace[0]["event"], "trigger");
    EXPECT_EQ(trace[0]["peer"], key(1).base64());
    EXPECT_NE(find_transition("Idle", "Connecting"), nullptr);

    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    const ManagedPeer* p = mgr->find(key(1));
    // Endpoint set and packets flowing, but Connected only once the handshake shows.
    EXPECT_EQ(p->state, PeerState::Connecting);
    EXPECT_TRUE(p->w().awaiting_handshake);
    ASSERT_EQ(sink.sent.size(), 3u);
    EXPECT_EQ(sink.sent[0][0], 1);
    EXPECT_EQ(sink.sent[2][0], 3);
    const DeviceUpdate& u = wg.updates.back();
    ASSERT_EQ(u.peers.size(), 1u);
    EXPECT_TRUE(u.peers[0].update_only);
    EXPECT_EQ(u.peers[0].endpoint->str(), "192.0.2.1:51820");
    EXPECT_EQ(u.peers[0].persistent_keepalive.value_or(0), 25);
    // Endpoint, then let replays through, then replay.
    int ep = log.find("wg endpoint"), pass = log.find("dp confirm 0"), inj = log.find("inject");
    EXPECT_LT(ep, pass);
    EXPECT_LT(pass, inj);
    EXPECT_EQ(find_transition("Connecting", "Connected"), nullptr);
    mgr->on_rx_wake(0, now());  // the first reply came through
    EXPECT_EQ(p->state, PeerState::Connected);
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    auto* t = find_transition("Connecting", "Connected");
    ASSERT_NE(t, nullptr);
    EXPECT_TRUE(t->contains("latency_ms"));
    EXPECT_GE(p->last_wake_ms, 0.0);
    EXPECT_EQ(p->wakes, 1u);

    // Held after Connected (replays still in flight in the datapath): sent at once.
    mgr->on_held_packet(0, pkt(4), now());
    ASSERT_EQ(sink.sent.size(), 4u);
    EXPECT_EQ(sink.sent[3][0], 4);
}

TEST_F(LazyManagerTest, PacketsBeyondTheLimitAreDroppedAndReleased) {
    make(true, 2);
    install3();
    for (uint8_t i = 1; i <= 5; ++i) mgr->on_held_packet(1, pkt(i), now());
    EXPECT_EQ(hold.released[1], 3u);
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.2:51820"));
    ASSERT_EQ(sink.sent.size(), 2u);
    EXPECT_EQ(hold.released[1], 5u);  // the 3 dropped and the 2 sent
    EXPECT_EQ(mgr->status(true).peers[1].dropped, 3u);
}

// A GSO super-packet cut into segments was counted once by the program: the manager
// raises the count to one per segment before any is released, and replays them in order.
TEST_F(LazyManagerTest, SegmentsOfOneHeldReportAreCountedAndReplayedInOrder) {
    make();
    install3();
    const std::vector<uint8_t> a = pkt(1), b = pkt(2), c = pkt(3);
    const std::span<const uint8_t> segments[] = {a, b, c};
    mgr->on_held_packets(0, segments, now());
    EXPECT_EQ(hold.added[0], 2u);
    EXPECT_EQ(queue.jobs.size(), 1u);  // one wake for the three
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    ASSERT_EQ(sink.sent.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(sink.sent[i][0], i + 1);
    EXPECT_EQ(hold.released[0], 3u);  // 1 counted + 2 added, each released once

    // A peer that is gone: its slot was reset, so nothing is added to it.
    mgr->on_held_packets(7, segments, now());
    EXPECT_EQ(hold.added.count(7), 0u);
    EXPECT_EQ(hold.released.count(7), 0u);
}

// Wakes of unproven peers wait for admission (--wake-rate); a peer proven by a handshake
// never waits. Queued peers keep a few packets and are muted beyond them.
TEST_F(LazyManagerTest, UnprovenWakesWaitTheirTurnProvenOnesDoNot) {
    const uint64_t t = bucket_spent();
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connecting);
    mgr->on_held_packet(1, pkt(2), t);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Idle) << "waits for admission";
    EXPECT_EQ(queue.jobs.size(), 1u);
    EXPECT_EQ(mgr->status(false).wakes_queued, 1u);
    for (uint8_t i = 0; i < 6; ++i) mgr->on_held_packet(1, pkt(3), t);
    EXPECT_EQ(hold.released[1], 3u) << "4 packets kept while queued, the rest dropped";
    EXPECT_GT(hold.muted[1], t) << "muted beyond them";

    // Its turn comes with the next token; it wakes with the packets it kept.
    mgr->tick(now() + 2'000'000'000ull);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connecting);
    EXPECT_EQ(hold.muted[1], 0u) << "no longer muted once it wakes";
    ASSERT_EQ(queue.jobs.size(), 2u);
    mgr->on_connect_done(ok(queue.jobs[1].job_id, "192.0.2.2:51820"));
    EXPECT_EQ(mgr->find(key(2))->w().replayed, 4u) << "the 4 packets it kept";

    // Peer 1 completes its handshake: proven. Idle again, it wakes at once although
    // the bucket is empty.
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    mgr->on_rx_wake(0, now());
    ASSERT_EQ(mgr->find(key(1))->state, PeerState::Connected);
    EXPECT_TRUE(mgr->find(key(1))->proven);
    mgr->make_idle(key(1), "operator");
    mgr->on_held_packet(2, pkt(4), now());  // unproven, no token: queued
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Idle);
    mgr->on_held_packet(0, pkt(5), now());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connecting) << "proven: no waiting";
}

// A queued peer whose turn comes while WireGuard does not answer is not woken; the
// packets it kept are dropped then (counted), not left in its slot for a later wake.
TEST_F(LazyManagerTest, AQueuedPeerThatCannotWakeOnItsTurnDropsWhatItKept) {
    const uint64_t t = bucket_spent();
    mgr->on_held_packet(1, pkt(2), t);
    mgr->on_held_packet(1, pkt(3), t);
    ASSERT_EQ(mgr->status(false).wakes_queued, 1u);
    EXPECT_EQ(hold.released[1], 0u);
    wg.down = true;
    mgr->tick(now() + 2'000'000'000ull);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Idle);
    EXPECT_EQ(mgr->status(false).wakes_queued, 0u);
    EXPECT_EQ(hold.released[1], 2u) << "both kept packets released from the slot";
    EXPECT_TRUE(mgr->find(key(2))->w().held.empty());
    EXPECT_EQ(mgr->find(key(2))->agent_dropped, 2u);
}

TEST_F(LazyManagerTest, FailedConnectGoesBackIdleAndDropsHeldPackets) {
    make();
    install3();
    mgr->on_held_packet(2, pkt(1), now());
    mgr->on_held_packet(2, pkt(2), now());
    ConnectPool::Completion c;
    c.job_id = queue.jobs[0].job_id;
    c.result.error = "peer has no Endpoint in the config";
    mgr->on_connect_done(c);
    const ManagedPeer* p = mgr->find(key(3));
    EXPECT_EQ(p->state, PeerState::Idle);
    EXPECT_EQ(hold.released[2], 2u);
    EXPECT_TRUE(sink.sent.empty());
    auto* t = find_transition("Connecting", "Idle");
    ASSERT_NE(t, nullptr);
    EXPECT_NE((*t)["reason"].get<std::string>().find("no Endpoint"), std::string::npos);
    EXPECT_TRUE(hold.held(2));  // still held
}

TEST_F(LazyManagerTest, WireGuardRefusingTheEndpointIsAFailureNotACrash) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    wg.fail_next = true;
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    EXPECT_EQ(hold.released[0], 1u);
}

TEST_F(LazyManagerTest, MakeIdleHoldsBeforeClearingTheEndpoint) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    log.entries.clear();
    mgr->make_idle(key(1), "operator");
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    int h = log.find("dp hold 0"), rm = log.find("wg remove");
    ASSERT_GE(h, 0);
    ASSERT_GE(rm, 0);
    EXPECT_LT(h, rm);
    const DeviceUpdate& u = wg.updates.back();
    ASSERT_EQ(u.peers.size(), 2u);  // remove + re-add in one message
    EXPECT_TRUE(u.peers[0].remove);
    EXPECT_FALSE(u.peers[1].endpoint.has_value());
    EXPECT_THROW(mgr->make_idle(key(9), "operator"), std::invalid_argument);
}

TEST_F(LazyManagerTest, CompletionForAPeerMadeIdleMeanwhileIsIgnored) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    uint64_t job = queue.jobs[0].job_id;
    mgr->make_idle(key(1), "operator");
    mgr->on_connect_done(ok(job, "192.0.2.1:51820"));
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    EXPECT_TRUE(sink.sent.empty());
}

TEST_F(LazyManagerTest, RemoteActivityConnectsWithoutAConnector) {
    make();
    install3();
    mgr->on_rx_wake(2, now());
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Connected);
    EXPECT_TRUE(queue.jobs.empty());
    EXPECT_FALSE(hold.held(2));
    auto* t = find_transition("Idle", "Connected");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ((*t)["reason"], "remote");
}

TEST_F(LazyManagerTest, ReplaysReleaseTheHoldOnlyAfterTheSend) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_held_packet(0, pkt(2), now());
    mgr->on_held_packet(0, pkt(3), now());
    EXPECT_EQ(hold.released[0], 0u);  // still waiting for the endpoint
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    EXPECT_EQ(hold.released[0], 3u);
    EXPECT_EQ(mgr->status(true).peers[0].dropped, 0u);
    mgr->on_held_packet(0, pkt(4), now());  // waits for the handshake proof
    EXPECT_EQ(hold.released[0], 3u);
    sink.reach = false;  // a failed send is dropped, and released all the same
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(hold.released[0], 4u);
    EXPECT_EQ(mgr->status(true).peers[0].dropped, 1u);
}

TEST_F(LazyManagerTest, RestoreAllGivesEveryPeerItsEndpointBack) {
    make();
    install3();
    mgr->restore_all();
    const DeviceUpdate& u = wg.updates.back();
    ASSERT_EQ(u.peers.size(), 2u);  // peer 3 has no endpoint to restore
    EXPECT_EQ(u.peers[0].endpoint->str(), "192.0.2.1:51820");
    EXPECT_EQ(u.peers[0].persistent_keepalive.value_or(0), 25);
    EXPECT_FALSE(hold.held(0));
    EXPECT_TRUE(hold.held(2));
}

TEST_F(LazyManagerTest, EagerModeInstallsEndpointsAndStartsConnected) {
    make(false);
    install3();
    auto st = mgr->status(false);
    EXPECT_EQ(st.connected, 2u);
    EXPECT_EQ(st.idle, 1u);
    int with_ep = 0;
    for (const auto& op : wg.updates[0].peers) with_ep += op.endpoint.has_value();
    EXPECT_EQ(with_ep, 2);
    EXPECT_THROW(mgr->make_idle(key(1), "operator"), std::invalid_argument);
}

TEST_F(LazyManagerTest, BadConnectorSpecFailsBeforeAnythingIsApplied) {
    make();
    auto s = spec(1, "192.0.2.1:51820");
    s.connector = "carrier-pigeon";
    std::vector<PeerSpec> v = {s};
    EXPECT_THROW(mgr->install(std::move(v)), std::invalid_argument);
    EXPECT_TRUE(wg.updates.empty());
    EXPECT_TRUE(log.entries.empty());
}

TEST_F(LazyManagerTest, WireGuardFailureOnInstallUndoesTheDatapath) {
    make();
    wg.fail_next = true;
    EXPECT_THROW(install3(), WgError);
    EXPECT_TRUE(hold.mode.empty());
    EXPECT_EQ(mgr->size(), 0u);
}

TEST_F(LazyManagerTest, LostReportsAreRecoveredFromTheMarks) {
    make();
    install3();
    // Nothing lost: the marks are not even looked at.
    hold.missed = {0};
    mgr->tick(now());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Idle);
    EXPECT_EQ(hold.missed.count(0), 1u);

    // The ring overflowed: peer 0's first packet and peer 1's first reply (the
    // program already passes peer 1) never arrived; peer 2 lost nothing.
    hold.lost = 3;
    hold.missed = {0, 1};
    hold.mode[1] = SlotMode::Pass;
    mgr->tick(now());
    EXPECT_TRUE(hold.missed.empty());
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connecting);
    ASSERT_EQ(queue.jobs.size(), 1u);  // woken through its connector
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Connected);
    EXPECT_EQ(mgr->find(key(2))->w().trigger_reason, "remote");
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Idle);
    auto st = mgr->status(false);
    EXPECT_EQ(st.lost_reports, 3u);
    EXPECT_EQ(st.lost_recovered, 2u);
    bool overrun = false;
    for (const auto& ev : trace)
        if (ev["event"] == "overrun") {
            overrun = true;
            EXPECT_EQ(ev["lost"], 3);
            EXPECT_EQ(ev["recovered"], 2);
        }
    EXPECT_TRUE(overrun);

    // A mark on a peer that is already waking changes nothing but is taken.
    hold.lost = 4;
    hold.missed = {0};
    mgr->tick(now());
    EXPECT_TRUE(hold.missed.empty());
    EXPECT_EQ(queue.jobs.size(), 1u);
    EXPECT_EQ(mgr->status(false).lost_recovered, 2u);
}

TEST_F(LazyManagerTest, StreamedPeerStatusesMatchTheStatusList) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    const LazyStatus st = mgr->status(true);
    ASSERT_EQ(st.peers.size(), 3u);
    PeerStatusSource next = mgr->peer_statuses();
    PeerStatus p;  // reused, as status_reply_text does: nothing may leak between peers
    for (const auto& want : st.peers) {
        ASSERT_TRUE(next(p));
        EXPECT_EQ(to_json(p), to_json(want));
    }
    EXPECT_FALSE(next(p));
    EXPECT_EQ(st.peers[0].endpoint, "192.0.2.1:51820");
    EXPECT_EQ(st.peers[1].endpoint, "");  // not carried over from the previous peer
}

TEST_F(LazyManagerTest, StatusShowsWireGuardFiguresOfAwakePeersAndZerosOnceIdle) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    wg.handshakes[key(1)] = 1'700'000'100;
    wg.transfer[key(1)] = {1000, 2000};
    mgr->tick(now());  // the handshake proof's read
    ASSERT_EQ(mgr->find(key(1))->state, PeerState::Connected);
    auto figures = [&] { return mgr->status(true).peers[0]; };
    PeerStatus p = figures();
    EXPECT_EQ(p.rx_bytes, 1000u);
    EXPECT_EQ(p.tx_bytes, 2000u);
    EXPECT_EQ(p.last_handshake_ms, 1'700'000'100'000);
    EXPECT_EQ(p.wg_read_ms, unix_now());
    EXPECT_EQ(figures().rx_bytes, 1000u) << "a status reads nothing itself";
    const int64_t read_at = unix_now();

    // No read of its own before the figures are 10 s old; then one.
    const int reads = wg.get_device_calls;
    wg.transfer[key(1)] = {5000, 6000};
    clock_ns += 5'000'000'000;
    mgr->tick(now());
    EXPECT_EQ(wg.get_device_calls, reads);
    EXPECT_EQ(figures().rx_bytes, 1000u);
    EXPECT_EQ(figures().wg_read_ms, read_at);
    clock_ns += 5'000'000'000;
    mgr->tick(now());
    EXPECT_EQ(wg.get_device_calls, reads + 1);
    EXPECT_EQ(figures().rx_bytes, 5000u);
    EXPECT_EQ(figures().tx_bytes, 6000u);
    EXPECT_EQ(figures().wg_read_ms, unix_now());

    // Idle: re-added without a session, so WireGuard's figures are zeros, and with no
    // peer awake nothing is read for them.
    mgr->make_idle(key(1), "operator");
    p = figures();
    EXPECT_EQ(p.rx_bytes, 0u);
    EXPECT_EQ(p.last_handshake_ms, 0);
    EXPECT_EQ(p.wg_read_ms, 0);
    const int idle_reads = wg.get_device_calls;
    for (int i = 0; i < 4; ++i) {
        clock_ns += 10'000'000'000;
        mgr->tick(now());
    }
    EXPECT_EQ(wg.get_device_calls, idle_reads);
}

}  // namespace
}  // namespace nb
