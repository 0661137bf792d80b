// The lazy manager with the UDP trigger engine's port (tests/lazy/fakes.hpp FakeHold
// with udp = true): idle peers point at listeners, a handshake initiation is the
// trigger, the initiation is forwarded once the endpoint is set, and without traffic
// reports the manager proves handshakes and activity through WireGuard's own numbers.
#include <gtest/gtest.h>

#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;
using namespace std::chrono_literals;

constexpr uint64_t kSec = 1000000000ull;

class LazyUdpEngineTest : public LazyFixture {
  protected:
    void make_udp(std::chrono::milliseconds threshold = 60s) {
        hold.udp = true;
        LazyOptions o = options();
        o.inactivity_threshold = threshold;
        mgr = std::make_unique<LazyManager>(
            o, wg, &hold, nullptr, queue,
            [this](const TraceEvent& e) { trace.push_back(trace_json(e)); });
    }
    PeerState state(uint8_t n) const { return mgr->find(key(n))->state; }
    // Wakes peer 1 by a trigger and completes its handshake, ticking at `at` (ticks must
    // not go back in time).
    void connect1(uint64_t at) {
        size_t jobs = queue.jobs.size();
        mgr->on_trigger(0, now());
        ASSERT_EQ(queue.jobs.size(), jobs + 1) << "peer 1 did not start a wake";
        mgr->on_connect_done(ok(queue.jobs.back().job_id, "192.0.2.1:51820"));
        wg.handshakes[key(1)] = 1700000000;
        mgr->tick(at);
        ASSERT_EQ(state(1), PeerState::Connected);
    }
};

TEST_F(LazyUdpEngineTest, NeedsNoPacketSink) {
    EXPECT_NO_THROW(make_udp());
    hold.udp = false;  // the BPF engine re-injects, so it does
    EXPECT_THROW(LazyManager(options(), wg, &hold, nullptr, queue, nullptr), std::invalid_argument);
}

TEST_F(LazyUdpEngineTest, IdlePeersPointAtTheirListeners) {
    make_udp();
    install3();
    std::vector<PeerUpdate> ops;
    for (const auto& op : wg.updates.back().peers)
        if (!op.remove) ops.push_back(op);
    ASSERT_EQ(ops.size(), 3u);
    EXPECT_EQ(ops[0].endpoint->str(), "127.1.0.1:40000");
    EXPECT_EQ(ops[2].endpoint->str(), "127.1.0.1:40002");
    EXPECT_FALSE(ops[0].persistent_keepalive.value_or(0));
}

TEST_F(LazyUdpEngineTest, TriggerConnectsForwardsAndTheHandshakeTimeConfirms) {
    make_udp();
    install3();
    mgr->on_trigger(0, now());
    mgr->on_trigger(0, now());  // WireGuard's retry while waking: one wake
    ASSERT_EQ(queue.jobs.size(), 1u);
    EXPECT_EQ(trace[0]["event"], "trigger");
    EXPECT_EQ(trace[0]["proto"], "wireguard-handshake");
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    // Endpoint into WireGuard first, then the captured initiation to it.
    int ep = log.find("wg endpoint"), fwd = log.find("dp forward 0 192.0.2.1:51820");
    ASSERT_GE(ep, 0);
    ASSERT_GE(fwd, 0);
    EXPECT_LT(ep, fwd);
    EXPECT_EQ(state(1), PeerState::Connecting);
    // No reply is ever reported: the handshake time is read at once and often (the fast
    // pace starts with the endpoint, not with the next tick).
    EXPECT_EQ(mgr->tick_interval(), 5ms);
    mgr->tick(now());
    EXPECT_EQ(mgr->tick_interval(), 5ms);
    int calls = wg.get_device_calls;
    EXPECT_GE(calls, 1);
    EXPECT_EQ(state(1), PeerState::Connecting);
    wg.handshakes[key(1)] = 1700000000;
    mgr->tick(now() + 10 * 1000000ull);
    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);  // the engine closes the listener
}

TEST_F(LazyUdpEngineTest, InactivityComesFromTransferCountersBeyondKeepalives) {
    make_udp(60s);
    install3();  // peer 1 has PersistentKeepalive = 25
    uint64_t t = now();
    connect1(t);
    // Keepalives only (32 bytes each way every 25 s) and a rekey: not activity.
    wg.transfer[key(1)] = {32 * 3 + 148, 32 * 3 + 92};
    mgr->tick(t + 30 * kSec);
    wg.transfer[key(1)] = {32 * 5 + 148, 32 * 5 + 92};
    mgr->tick(t + 61 * kSec);
    EXPECT_EQ(state(1), PeerState::Idle);
    // The idle peer's endpoint is its listener again.
    EXPECT_EQ(wg.ops_for(key(1)).back().endpoint->str(), "127.1.0.1:40000");
}

TEST_F(LazyUdpEngineTest, TrafficBeyondKeepalivesKeepsAPeerConnected) {
    make_udp(60s);
    install3();
    uint64_t t = now();
    connect1(t);
    wg.transfer[key(1)] = {20000, 30000};  // real traffic
    mgr->tick(t + 30 * kSec);
    mgr->tick(t + 61 * kSec);
    EXPECT_EQ(state(1), PeerState::Connected);  // active at 30 s, 31 s ago
    mgr->tick(t + 95 * kSec);
    EXPECT_EQ(state(1), PeerState::Idle);
}

TEST_F(LazyUdpEngineTest, AHandshakeOnAnIdlePeerIsARemoteWake) {
    make_udp(60s);
    install3();
    wg.handshakes[key(2)] = 1700000000;  // the remote started a handshake with us
    mgr->tick(now() + 31 * kSec);
    EXPECT_EQ(state(2), PeerState::Connected);
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_TRUE(queue.jobs.empty());  // WireGuard took the endpoint from the remote
    bool remote = false;
    for (const auto& e : trace)
        if (e["event"] == "transition" && e["peer"] == key(2).base64() && e["reason"] == "remote")
            remote = true;
    EXPECT_TRUE(remote);
}

TEST_F(LazyUdpEngineTest, ASlowDumpSpacesTheInactivityScans) {
    make_udp(20s);  // a scan every second
    install3();
    wg.dump_delay = 300ms;  // five times that is 1.5 s
    uint64_t t = now();
    int before = wg.get_device_calls;
    mgr->tick(t);
    EXPECT_EQ(wg.get_device_calls, before + 1);
    mgr->tick(t + 1200000000ull);  // a second on, but within five dumps' time
    EXPECT_EQ(wg.get_device_calls, before + 1);
    mgr->tick(t + 1600000000ull);
    EXPECT_EQ(wg.get_device_calls, before + 2);
}

}  // namespace
}  // namespace nb
