// How the manager keeps a real peer's wake quick while a crowd of wakes that may never
// answer (a sweep of idle peers' addresses) keeps it busy: handshake polls read off the
// loop, bulk WireGuard work in chunks that fit a time budget, and proven peers'
// endpoints in a request of their own. Against the fakes of tests/lazy/fakes.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;
using namespace std::chrono_literals;

constexpr uint64_t kMs = 1000000ull;
constexpr uint64_t kSec = 1000 * kMs;

class CrowdTest : public LazyFixture {
  protected:
    PeerState state(uint8_t n) const {
        const ManagedPeer* p = mgr->find(key(n));
        EXPECT_NE(p, nullptr) << "peer " << int(n);
        return p ? p->state : PeerState::Idle;
    }
    // Peer 1 woken by pkt(1), its endpoint set (so pkt(1) went to WireGuard), and pkt(2)
    // held for the handshake's proof.
    void awaiting_proof() {
        make();
        install3();
        mgr->on_held_packet(0, pkt(1), now());
        mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
        mgr->on_held_packet(0, pkt(2), now());
    }
    size_t count(PeerState s, uint8_t peers) const {
        size_t n = 0;
        for (uint8_t i = 1; i <= peers; ++i) n += state(i) == s;
        return n;
    }
};

// Kernel WireGuard: the poll's dump runs off the loop (agent/wg/device_reader.hpp). The
// tick only starts it, one at a time, and the answer proves who waits when it comes.
TEST_F(CrowdTest, BackgroundReadsProveHandshakesWithoutBlockingTheTick) {
    awaiting_proof();
    int started = 0;
    bool accept = true;
    mgr->set_background_read([&] {
        ++started;
        return accept;
    });
    uint64_t t = now();
    mgr->tick(t);
    EXPECT_EQ(started, 1);
    EXPECT_EQ(wg.get_device_calls, 0);  // not on the loop
    mgr->tick(t + 100 * kMs);           // still running: no second read
    EXPECT_EQ(started, 1);
    EXPECT_EQ(state(1), PeerState::Connecting);

    // A failed read is logged, and the next poll after the normal pace tries again.
    mgr->on_device_read(std::nullopt, "boom", kMs, t + 200 * kMs);
    EXPECT_EQ(state(1), PeerState::Connecting);
    mgr->tick(t + 300 * kMs);
    EXPECT_EQ(started, 1);
    mgr->tick(t + 1300 * kMs);
    EXPECT_EQ(started, 2);

    WgDevice dev;
    WgPeer wp;
    wp.public_key = key(1);
    wp.last_handshake_sec = 1700000000;
    wp.tx_bytes = sent_after_handshake(1);
    dev.peers.push_back(wp);
    mgr->on_device_read(dev, "", kMs, t + 1400 * kMs);
    EXPECT_EQ(state(1), PeerState::Connected);
    ASSERT_EQ(sink.sent.size(), 2u);
    EXPECT_EQ(sink.sent[1][0], 2);
    EXPECT_EQ(wg.get_device_calls, 0);
}

// Failing a wake costs WireGuard a remove and a re-add (an RCU grace period each on
// kernel WireGuard). A crowd of expired wakes is failed in chunks sized to the budget,
// one chunk a tick, with the ticks coming fast until the backlog is gone.
TEST_F(CrowdTest, ExpiredWakesFailInChunksThatShrinkToTheBudget) {
    LazyOptions o = options();
    o.connect_timeout = 1s;
    o.bulk_budget = 2ms;
    make(o);
    constexpr uint8_t kPeers = 60;
    std::vector<PeerSpec> specs;
    for (uint8_t n = 1; n <= kPeers; ++n)
        specs.push_back(spec(n, ("192.0.2." + std::to_string(n) + ":51820").c_str()));
    mgr->install(std::move(specs));
    for (uint32_t id = 0; id < kPeers; ++id) mgr->on_held_packet(id, pkt(1), now());
    ASSERT_EQ(queue.jobs.size(), kPeers);
    std::vector<ConnectPool::Completion> done;
    for (uint8_t n = 1; n <= kPeers; ++n)
        done.push_back(
            ok(queue.jobs[n - 1].job_id, ("192.0.2." + std::to_string(n) + ":51820").c_str()));
    mgr->on_connect_batch(done);
    ASSERT_EQ(count(PeerState::Connecting, kPeers), kPeers);

    wg.set_delay_per_peer = 500us;  // a remove and a re-add: 1 ms a peer
    const uint64_t t = now() + 5 * kSec;
    std::vector<size_t> failed;
    for (int turn = 0; turn < 10 && count(PeerState::Idle, kPeers) < kPeers; ++turn) {
        size_t before = count(PeerState::Idle, kPeers);
        mgr->tick(t + static_cast<uint64_t>(turn) * 5 * kMs);
        failed.push_back(count(PeerState::Idle, kPeers) - before);
        if (count(PeerState::Idle, kPeers) < kPeers) {
            EXPECT_EQ(mgr->tick_interval(), o.handshake_poll_fast) << "the rest comes soon";
        }
    }
    ASSERT_GE(failed.size(), 4u);
    EXPECT_EQ(failed[0], 32u) << "the first chunk";
    // 1 ms a peer against 2 ms: each chunk halfway from the last to 2 (or 1, if slower).
    EXPECT_GE(failed[1], 16u);
    EXPECT_LE(failed[1], 17u);
    EXPECT_GE(failed[2], 8u);
    EXPECT_LE(failed[2], 9u);
    EXPECT_EQ(count(PeerState::Idle, kPeers), kPeers);
    EXPECT_EQ(mgr->tick_interval(), 250ms) << "no backlog left";
}

// A proven peer's endpoint is set in a request of its own, ahead of the crowd's that
// completed with it.
TEST_F(CrowdTest, ProvenPeersEndpointsGoFirstInARequestOfTheirOwn) {
    make();
    install3();
    mgr->on_held_packet(0, pkt(1), now());
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    mgr->on_rx_wake(0, now());
    ASSERT_TRUE(mgr->find(key(1))->proven);
    mgr->make_idle(key(1), "operator");

    mgr->on_held_packet(1, pkt(2), now());  // unproven, asked first
    mgr->on_held_packet(0, pkt(3), now());
    ASSERT_EQ(queue.jobs.size(), 3u);
    size_t before = wg.updates.size();
    std::vector<ConnectPool::Completion> done = {ok(queue.jobs[1].job_id, "192.0.2.2:51820"),
                                                 ok(queue.jobs[2].job_id, "192.0.2.1:51820")};
    mgr->on_connect_batch(done);
    ASSERT_EQ(wg.updates.size(), before + 2);
    const DeviceUpdate& first = wg.updates[before];
    ASSERT_FALSE(first.peers.empty());
    for (const auto& op : first.peers) EXPECT_EQ(op.public_key, key(1));
    for (const auto& op : wg.updates[before + 1].peers) EXPECT_EQ(op.public_key, key(2));
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_TRUE(mgr->find(key(1))->w().awaiting_handshake);
    EXPECT_TRUE(mgr->find(key(2))->w().awaiting_handshake);
}

}  // namespace
}  // namespace nb
