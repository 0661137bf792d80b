// The peer lifecycle beyond the first wake, against the fakes of tests/lazy/fakes.hpp:
// handshake proof, connect timeouts and backoff, inactivity, groups, remote wakes, the
// idle race, network-map updates and lazy mode at runtime. Time is the fixture's clock
// (LazyFixture::clock_ns, the manager's LazyOptions::clock): deadlines are driven by
// passing now() plus an offset or moving the clock, never by sleeping.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;  // the fakes and key()/spec()
using namespace std::chrono_literals;

constexpr uint64_t kMs = 1000000ull;
constexpr uint64_t kSec = 1000 * kMs;

PeerSpec in_groups(PeerSpec s, std::vector<std::string> groups) {
    s.groups = std::move(groups);
    return s;
}

class LazyLifecycleTest : public LazyFixture {
  protected:
    // Peer 1 woken by pkt(1), its endpoint set (so pkt(1) went to WireGuard), and pkt(2)
    // .. pkt(last) held for the handshake's proof.
    void awaiting_proof(uint8_t last) {
        make();
        install3();
        packet(0, 1);
        mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
        for (uint8_t i = 2; i <= last; ++i) mgr->on_held_packet(0, pkt(i), now());
    }
    PeerStatus st(uint8_t n) const {
        for (auto& p : mgr->status(true).peers)
            if (p.public_key == key(n).base64()) return p;
        ADD_FAILURE() << "no status for peer " << int(n);
        return {};
    }
    PeerState state(uint8_t n) const {
        const ManagedPeer* p = mgr->find(key(n));
        EXPECT_NE(p, nullptr) << "peer " << int(n);
        return p ? p->state : PeerState::Idle;
    }
    // The trace's transitions of one peer, in order.
    std::vector<nlohmann::json> transitions(uint8_t n) const {
        std::vector<nlohmann::json> out;
        for (const auto& e : trace)
            if (e["event"] == "transition" && e["peer"] == key(n).base64()) out.push_back(e);
        return out;
    }
    std::string last_reason(uint8_t n) const {
        auto t = transitions(n);
        return t.empty() ? "" : t.back()["reason"].get<std::string>();
    }
    size_t events(const std::string& name) const {
        size_t k = 0;
        for (const auto& e : trace) k += e["event"] == name;
        return k;
    }
    // A held packet to peer `id`; returns the job it started, 0 if none.
    uint64_t packet(uint32_t id, uint8_t tag = 1) {
        size_t before = queue.jobs.size();
        mgr->on_held_packet(id, pkt(tag), now());
        return queue.jobs.size() > before ? queue.jobs.back().job_id : 0;
    }
    uint64_t job_of(uint8_t n) const {
        const ManagedPeer* p = mgr->find(key(n));
        return p ? p->w().job_id : 0;
    }
    void fail_job(uint64_t job, const char* error) {
        ConnectPool::Completion c;
        c.job_id = job;
        c.result.error = error;
        mgr->on_connect_done(c);
    }
    // The ingress program passing the slot of `id` (the remote talked) right after the
    // agent's first set_mode on it.
    void flip_to_pass_after_first_set_mode(uint32_t id) {
        hold.on_set_mode = [this, id, done = false](uint32_t got) mutable {
            if (got != id || done) return;
            done = true;
            hold.mode[id] = SlotMode::Pass;
        };
    }
    static bool contains(const std::string& s, const std::string& part) {
        return s.find(part) != std::string::npos;
    }
};

// --- 1. Handshake confirmation ---------------------------------------------------

TEST_F(LazyLifecycleTest, EndpointSetWaitsForTheHandshakeAndTheFirstReplyConfirms) {
    make();
    install3();
    packet(0);
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    const ManagedPeer* p = mgr->find(key(1));
    EXPECT_EQ(p->state, PeerState::Connecting);
    EXPECT_TRUE(p->w().awaiting_handshake);
    EXPECT_EQ(hold.mode[0], SlotMode::Confirm);
    EXPECT_EQ(st(1).state, PeerState::Connecting);
    EXPECT_EQ(mgr->status(false).connecting, 1u);

    mgr->on_rx_wake(0, now());
    EXPECT_EQ(p->state, PeerState::Connected);
    EXPECT_FALSE(p->w().awaiting_handshake);
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    auto* t = find_transition("Connecting", "Connected");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ((*t)["reason"], "packet");
    EXPECT_EQ(wg.get_device_calls, 0);  // the reply was proof enough
}

TEST_F(LazyLifecycleTest, OneWayTrafficIsConfirmedByWireGuardsHandshakeTime) {
    awaiting_proof(1);  // one packet, replayed: nothing waits, no reply will come
    uint64_t t = now();
    // The endpoint was set just now: its handshake completes within a round trip, and no
    // reply may come to prove it (one-way traffic), so WireGuard is asked at once, often.
    mgr->tick(t);
    EXPECT_EQ(wg.get_device_calls, 1);
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_EQ(mgr->tick_interval(), 5ms);

    wg.handshakes[key(1)] = 1700000000;
    wg.transfer[key(1)] = {92, sent_after_handshake(1)};
    wg.handshakes[key(2)] = 1700000000;  // an Idle peer: a handshake proves nothing for it
    mgr->tick(t + 10 * kMs);
    EXPECT_EQ(wg.get_device_calls, 2);
    EXPECT_EQ(state(1), PeerState::Connected);  // within 10 ms of the handshake
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    EXPECT_EQ(last_reason(1), "packet");
    EXPECT_EQ(state(2), PeerState::Idle);
    mgr->tick(t + 20 * kMs);  // nothing waits any more: the normal pace
    EXPECT_EQ(mgr->tick_interval(), 250ms);
}

TEST_F(LazyLifecycleTest, AHandshakeThatTakesLongerIsPolledAtTheNormalPace) {
    awaiting_proof(1);
    uint64_t t = now();
    mgr->tick(t);
    EXPECT_EQ(mgr->tick_interval(), 5ms);
    // Two seconds without a handshake: polls go back to one a second.
    mgr->tick(t + 2100 * kMs);
    EXPECT_EQ(mgr->tick_interval(), 250ms);
    const int calls = wg.get_device_calls;
    mgr->tick(t + 2400 * kMs);
    EXPECT_EQ(wg.get_device_calls, calls);  // not yet
    mgr->tick(t + 3200 * kMs);
    EXPECT_EQ(wg.get_device_calls, calls + 1);
    EXPECT_EQ(state(1), PeerState::Connecting);
}

// WireGuard sends its handshake queue when the handshake completes; a packet passed to it
// meanwhile could go first. So, with the endpoint set, newer packets wait for the proof.
TEST_F(LazyLifecycleTest, PacketsAfterTheEndpointWaitForTheProofAndKeepTheirOrder) {
    make();
    install3();
    packet(0, 1);
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    ASSERT_EQ(sink.sent.size(), 1u);  // the trigger starts WireGuard's handshake
    EXPECT_EQ(mgr->tick_interval(), 5ms);  // its handshake is due: polled for at once
    mgr->on_held_packet(0, pkt(2), now());
    mgr->on_held_packet(0, pkt(3), now());
    EXPECT_EQ(sink.sent.size(), 1u);
    EXPECT_EQ(hold.released[0], 1u);
    // One-way traffic may be waiting: WireGuard's handshake time is read at once and
    // often, not after a second.
    EXPECT_EQ(mgr->tick_interval(), 5ms);
    uint64_t t = now();
    mgr->tick(t);
    EXPECT_EQ(wg.get_device_calls, 1);
    EXPECT_EQ(state(1), PeerState::Connecting);
    mgr->tick(t + 2 * kMs);  // within the fast interval: no second dump
    EXPECT_EQ(wg.get_device_calls, 1);

    mgr->on_rx_wake(0, now());  // the first reply
    EXPECT_EQ(state(1), PeerState::Connected);
    ASSERT_EQ(sink.sent.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(sink.sent[i][0], i + 1);
    EXPECT_EQ(hold.released[0], 3u);
    mgr->tick(t + 10 * kMs);
    EXPECT_EQ(mgr->tick_interval(), 250ms);
    // Pass before the replays: the program keeps newer packets back by `pending`
    // until they are out.
    const auto& e = log.entries;
    auto pass = std::find(e.begin(), e.end(), "dp pass 0");
    ASSERT_NE(pass, e.end());
    EXPECT_EQ(std::find(pass, e.end(), "inject 2") - pass, 1);
    EXPECT_EQ(e.back(), "inject 3");
}

TEST_F(LazyLifecycleTest, HandshakeTimeProvesOneWayTrafficAndReleasesWhatWaited) {
    awaiting_proof(2);
    wg.handshakes[key(1)] = 1700000000;
    wg.transfer[key(1)] = {92, sent_after_handshake(1)};
    mgr->tick(now());
    EXPECT_EQ(state(1), PeerState::Connected);
    ASSERT_EQ(sink.sent.size(), 2u);
    EXPECT_EQ(sink.sent[1][0], 2);
}

// WireGuard stamps the handshake before it sends the packets it queued for it (CI saw
// a burst arrive with one packet swapped). Newer packets wait until its tx counter
// shows that send.
TEST_F(LazyLifecycleTest, PacketsWaitUntilWireGuardHasSentWhatItQueuedForTheHandshake) {
    awaiting_proof(3);
    ASSERT_EQ(sink.sent.size(), 1u);
    wg.handshakes[key(1)] = 1700000000;
    wg.transfer[key(1)] = {92, 148};  // the initiation only: the queue is not out yet
    uint64_t t = now();
    mgr->tick(t);
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_EQ(sink.sent.size(), 1u);
    EXPECT_EQ(mgr->tick_interval(), 5ms);  // still asking often

    wg.transfer[key(1)] = {92, sent_after_handshake(1)};
    mgr->tick(t + 10 * kMs);
    EXPECT_EQ(state(1), PeerState::Connected);
    ASSERT_EQ(sink.sent.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i) EXPECT_EQ(sink.sent[i][0], i + 1);
}

TEST_F(LazyLifecycleTest, AHandshakeWhoseQueuedPacketsNeverShowStillProvesAfterAGrace) {
    awaiting_proof(2);
    wg.handshakes[key(1)] = 1700000000;
    wg.transfer[key(1)] = {92, 148};  // WireGuard dropped what it queued
    uint64_t t = now();
    mgr->tick(t);
    mgr->tick(t + 200 * kMs);
    EXPECT_EQ(state(1), PeerState::Connecting);
    mgr->tick(t + 260 * kMs);
    EXPECT_EQ(state(1), PeerState::Connected);
    ASSERT_EQ(sink.sent.size(), 2u);
    EXPECT_EQ(sink.sent[1][0], 2);
}

// The counter test is a lower bound: padding is left out, and before the send the
// counter holds handshake messages only.
TEST(StagedSent, ReadsWireGuardsTxCounter) {
    WakeState w;
    EXPECT_TRUE(LazyManager::staged_sent(w, 0));  // nothing was queued
    w.replayed = 1;
    w.replayed_bytes = 28;                               // the smallest ICMP or UDP packet
    EXPECT_FALSE(LazyManager::staged_sent(w, 148));      // one initiation
    EXPECT_TRUE(LazyManager::staged_sent(w, 148 + 64));  // ... and the padded message
    EXPECT_TRUE(LazyManager::staged_sent(w, 92 + 64));   // as responder
    w.replayed = 3;
    w.replayed_bytes = 3 * 1400;
    EXPECT_FALSE(LazyManager::staged_sent(w, 148 + 2 * 1440));  // one still queued
    EXPECT_TRUE(LazyManager::staged_sent(w, 148 + 3 * 1440));
}

TEST_F(LazyLifecycleTest, AGroupWakeWithNothingHeldReplaysTheFirstPacketAtOnce) {
    make();
    mgr->install({in_groups(spec(1, "192.0.2.1:51820"), {"ha"}),
                  in_groups(spec(2, "192.0.2.2:51820"), {"ha"})});
    packet(0, 1);
    ASSERT_EQ(last_reason(2), "group ha");
    mgr->on_connect_done(ok(job_of(2), "192.0.2.2:51820"));
    ASSERT_TRUE(mgr->find(key(2))->w().awaiting_handshake);
    EXPECT_TRUE(sink.sent.empty());  // nothing was held for peer 2
    mgr->on_held_packet(1, pkt(7), now());
    ASSERT_EQ(sink.sent.size(), 1u);  // it starts WireGuard's handshake
    mgr->on_held_packet(1, pkt(8), now());
    EXPECT_EQ(sink.sent.size(), 1u);  // the next one waits for the proof
    mgr->on_rx_wake(1, now());
    ASSERT_EQ(sink.sent.size(), 2u);
    EXPECT_EQ(sink.sent[1][0], 8);
}

TEST_F(LazyLifecycleTest, NoHandshakeWithinTheTimeoutGoesBackIdleAndCountsWhatWasQueued) {
    make();
    install3();
    packet(0, 1);
    packet(0, 2);
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    ASSERT_EQ(sink.sent.size(), 2u);
    // Two replays went to WireGuard, which queues them for a handshake that never comes;
    // three newer packets wait in the agent for the handshake to be proven.
    mgr->on_held_packet(0, pkt(3), now());
    mgr->on_held_packet(0, pkt(4), now());
    mgr->on_held_packet(0, pkt(5), now());
    EXPECT_EQ(sink.sent.size(), 2u);
    uint64_t t = now();
    mgr->tick(t + 9 * kSec);
    EXPECT_EQ(state(1), PeerState::Connecting);

    size_t updates = wg.updates.size();
    mgr->tick(t + 10 * kSec + kMs);
    EXPECT_EQ(state(1), PeerState::Idle);
    auto tr = transitions(1);
    ASSERT_FALSE(tr.empty());
    EXPECT_EQ(tr.back()["from"], "Connecting");
    std::string reason = tr.back()["reason"];
    EXPECT_TRUE(contains(reason, "no handshake within 10s")) << reason;
    EXPECT_TRUE(contains(reason, "retry after 2s")) << reason;
    EXPECT_EQ(tr.back()["error"], "no handshake within 10s");
    // WireGuard forgot the endpoint and session: remove and re-add, in one update.
    ASSERT_EQ(wg.updates.size(), updates + 1);
    const auto& ops = wg.updates.back().peers;
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_TRUE(ops[0].remove);
    EXPECT_EQ(ops[0].public_key, key(1));
    EXPECT_FALSE(ops[1].remove);
    EXPECT_FALSE(ops[1].endpoint.has_value());
    EXPECT_EQ(ops[1].allowed_ips, spec(1, nullptr).wg.allowed_ips);
    EXPECT_EQ(hold.mode[0], SlotMode::Hold);

    PeerStatus s = st(1);
    EXPECT_EQ(s.failures, 1u);
    EXPECT_GT(s.retry_in_ms, 0);
    EXPECT_LE(s.retry_in_ms, 2000);
    EXPECT_EQ(s.last_error, "no handshake within 10s");
    EXPECT_EQ(s.endpoint, "");
    EXPECT_EQ(s.dropped, 5u);         // 2 replayed into WireGuard + 3 held back
    EXPECT_EQ(hold.released[0], 5u);  // every held packet released in the program
}

// --- 2. A connector that never answers -------------------------------------------

TEST_F(LazyLifecycleTest, HungConnectorTimesOutItsPeerOnlyAndItsLateAnswerIsIgnored) {
    make();
    install3();
    uint64_t hung = packet(0, 1);
    ASSERT_NE(hung, 0u);
    // Another peer wakes and connects while the first connector hangs.
    uint64_t other = packet(1, 2);
    ASSERT_NE(other, 0u);
    mgr->on_connect_done(ok(other, "192.0.2.2:51820"));
    mgr->on_rx_wake(1, now());
    EXPECT_EQ(state(2), PeerState::Connected);
    EXPECT_EQ(state(1), PeerState::Connecting);

    mgr->tick(now() + 10 * kSec + kMs);
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_TRUE(contains(last_reason(1), "connector gave no answer within 10s")) << last_reason(1);
    EXPECT_EQ(st(1).last_error, "connector gave no answer within 10s");
    EXPECT_EQ(hold.released[0], 1u);  // the held packet was dropped
    EXPECT_EQ(st(1).dropped, 1u);
    EXPECT_EQ(state(2), PeerState::Connected);

    size_t updates = wg.updates.size();
    size_t sent = sink.sent.size();
    mgr->on_connect_done(ok(hung, "192.0.2.1:51820"));
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_EQ(wg.updates.size(), updates);
    EXPECT_EQ(sink.sent.size(), sent);
    EXPECT_EQ(hold.mode[0], SlotMode::Hold);
    EXPECT_FALSE(mgr->find(key(1))->w().endpoint.has_value());
}

TEST_F(LazyLifecycleTest, EndpointsThatArriveTogetherGoToWireGuardInOneRequest) {
    // A wake storm: answers that one event-loop pass drains become one request, not one
    // per peer (issue 6: a daemon busy with the storm answers each request slowly).
    make();
    install3();
    uint64_t a = packet(0, 1), b = packet(1, 2);
    size_t updates = wg.updates.size();
    std::vector<ConnectPool::Completion> done = {ok(a, "192.0.2.1:51820"),
                                                 ok(b, "192.0.2.2:51820")};
    mgr->on_connect_batch(done);
    ASSERT_EQ(wg.updates.size(), updates + 1);
    ASSERT_EQ(wg.updates.back().peers.size(), 2u);
    EXPECT_EQ(wg.updates.back().peers[0].endpoint->str(), "192.0.2.1:51820");
    EXPECT_EQ(wg.updates.back().peers[1].endpoint->str(), "192.0.2.2:51820");
    for (uint8_t n : {1, 2}) EXPECT_TRUE(mgr->find(key(n))->w().awaiting_handshake) << int(n);
    EXPECT_EQ(hold.mode[0], SlotMode::Confirm);
    EXPECT_EQ(hold.mode[1], SlotMode::Confirm);
}

TEST_F(LazyLifecycleTest, AFailedBatchOfEndpointsIsSetPeerByPeer) {
    make();
    install3();
    uint64_t a = packet(0, 1), b = packet(1, 2);
    size_t updates = wg.updates.size();
    wg.fail_next = true;  // the batch
    std::vector<ConnectPool::Completion> done = {ok(a, "192.0.2.1:51820"),
                                                 ok(b, "192.0.2.2:51820")};
    mgr->on_connect_batch(done);
    // Then one request each, and both wakes go on.
    ASSERT_EQ(wg.updates.size(), updates + 2);
    EXPECT_EQ(wg.updates[updates].peers.size(), 1u);
    for (uint8_t n : {1, 2}) {
        EXPECT_EQ(state(n), PeerState::Connecting) << int(n);
        EXPECT_TRUE(mgr->find(key(n))->w().awaiting_handshake) << int(n);
    }
}

TEST_F(LazyLifecycleTest, ATimeoutThatWireGuardCannotUndoIsRetriedNextTickAndCountedOnce) {
    // wireguard-go swamped by a storm does not answer the remove and re-add: the tick
    // must neither throw (every other peer would wait) nor count the failure again.
    make();
    install3();
    packet(0, 1);
    packet(1, 2);
    wg.fail_next = true;
    uint64_t t = now() + 10 * kSec + kMs;
    EXPECT_NO_THROW(mgr->tick(t));
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_EQ(state(2), PeerState::Connecting);
    EXPECT_EQ(mgr->find(key(1))->w().failures, 1u);

    mgr->tick(t + 2 * kSec);  // WireGuard answers again: both Idle, in one request
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_EQ(state(2), PeerState::Idle);
    EXPECT_EQ(st(1).failures, 1u);
    EXPECT_EQ(st(2).failures, 1u);
    EXPECT_TRUE(contains(last_reason(2), "connector gave no answer within 10s")) << last_reason(2);
    EXPECT_EQ(wg.updates.back().peers.size(), 4u);  // remove and re-add, two peers
}

// --- 3. Backoff ------------------------------------------------------------------

TEST_F(LazyLifecycleTest, PacketsDuringBackoffAreDroppedReleasedAndCountedWithoutAWake) {
    LazyOptions o = options();
    o.backoff_base = 10s;  // surely still backing off below
    make(o);
    install3();
    packet(2, 1);
    fail_job(queue.jobs[0].job_id, "resolving peer3.example: timeout");
    EXPECT_EQ(state(3), PeerState::Idle);
    EXPECT_EQ(st(3).dropped, 1u);
    EXPECT_EQ(hold.released[2], 1u);

    size_t jobs = queue.jobs.size();
    size_t triggers = events("trigger");
    for (uint8_t i = 0; i < 5; ++i) packet(2, i);
    EXPECT_EQ(queue.jobs.size(), jobs);
    EXPECT_EQ(events("trigger"), triggers);
    EXPECT_EQ(state(3), PeerState::Idle);
    EXPECT_EQ(hold.released[2], 6u);
    PeerStatus s = st(3);
    EXPECT_EQ(s.dropped, 6u);
    EXPECT_EQ(s.failures, 1u);
    EXPECT_GT(s.retry_in_ms, 0);
    EXPECT_LE(s.retry_in_ms, 10000);
    // One trace event for the burst, not one per packet.
    ASSERT_EQ(events("drop"), 1u);
    for (const auto& e : trace) {
        if (e["event"] != "drop") continue;
        EXPECT_EQ(e["peer"], key(3).base64());
        EXPECT_EQ(e["reason"], "backoff");
        EXPECT_GT(e["retry_in_ms"].get<int64_t>(), 0);
        EXPECT_LE(e["retry_in_ms"].get<int64_t>(), 10000);
        EXPECT_EQ(e["error"], "resolving peer3.example: timeout");
    }
}

TEST_F(LazyLifecycleTest, BackoffDoublesIsCappedAndASuccessResetsIt) {
    LazyOptions o = options();
    o.backoff_base = 2ms;
    o.backoff_max = 5ms;
    make(o);
    install3();
    const uint64_t expected_ms[] = {2, 4, 5};  // 2 * 2^(n-1), capped
    for (uint32_t n = 1; n <= 3; ++n) {
        uint64_t job = packet(2, static_cast<uint8_t>(n));
        ASSERT_NE(job, 0u) << "wake " << n;  // after retry_after, a packet wakes it again
        uint64_t before = now();
        fail_job(job, "no route");
        uint64_t after = now();
        const ManagedPeer* p = mgr->find(key(3));
        EXPECT_EQ(p->w().failures, n);
        EXPECT_GE(p->w().retry_after_ns, before + expected_ms[n - 1] * kMs) << n;
        EXPECT_LE(p->w().retry_after_ns, after + expected_ms[n - 1] * kMs) << n;
        EXPECT_TRUE(
            contains(last_reason(3), "retry after " + std::to_string(expected_ms[n - 1]) + "ms"))
            << last_reason(3);
        EXPECT_LE(st(3).retry_in_ms, static_cast<int64_t>(expected_ms[n - 1]));
        wait_until(p->w().retry_after_ns);
    }
    uint64_t job = packet(2, 9);
    ASSERT_NE(job, 0u);
    mgr->on_connect_done(ok(job, "192.0.2.3:51820"));
    mgr->on_rx_wake(2, now());
    EXPECT_EQ(state(3), PeerState::Connected);
    PeerStatus s = st(3);
    EXPECT_EQ(s.failures, 0u);
    EXPECT_EQ(s.retry_in_ms, 0);
    EXPECT_EQ(s.last_error, "");
}

// The same schedule seen in status, with backoffs long enough to compare: a never-lazy
// peer is retried by the scan in tick() once its backoff allows, no packet needed.
TEST_F(LazyLifecycleTest, NeverLazyPeerIsRetriedByTheScanWithADoublingCappedBackoff) {
    LazyOptions o = options();
    o.backoff_base = 10s;
    o.backoff_max = 25s;
    make(o);
    PeerSpec s = spec(4, nullptr);
    s.lazy = false;
    s.connector = "exec:/bin/false";  // never run here: the queue is a fake
    mgr->install({s});
    EXPECT_EQ(state(4), PeerState::Idle);  // nothing to resolve at start

    uint64_t t = now();
    int64_t previous = 0;
    const int64_t cap_ms[] = {10000, 20000, 25000};
    for (int n = 1; n <= 3; ++n) {
        mgr->tick(t + static_cast<uint64_t>(n) * 3600 * kSec);
        ASSERT_EQ(state(4), PeerState::Connecting) << n;
        EXPECT_EQ(last_reason(4), "never lazy");
        fail_job(job_of(4), "exec connector: exit status 1");
        PeerStatus ps = st(4);
        EXPECT_EQ(ps.failures, static_cast<uint32_t>(n));
        EXPECT_EQ(ps.last_error, "exec connector: exit status 1");
        EXPECT_LE(ps.retry_in_ms, cap_ms[n - 1]);
        EXPECT_GT(ps.retry_in_ms, cap_ms[n - 1] - 1000);
        EXPECT_GT(ps.retry_in_ms, previous);
        previous = ps.retry_in_ms;
    }
    size_t jobs = queue.jobs.size();
    mgr->tick(t + 4 * 3600 * kSec);  // far past the backoff: the scan retries
    EXPECT_EQ(queue.jobs.size(), jobs + 1);
    mgr->on_connect_done(ok(job_of(4), "192.0.2.4:51820"));
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(4), PeerState::Connected);
    EXPECT_EQ(st(4).failures, 0u);
    EXPECT_EQ(st(4).last_error, "");
}

// --- 4. Inactivity ---------------------------------------------------------------

TEST_F(LazyLifecycleTest, InactivePeersGoIdleHoldingFirstAndKeepingTheirRoutes) {
    LazyOptions o = options();
    o.inactivity_threshold = 60s;
    make(o);
    PeerSpec never = spec(4, "192.0.2.4:51820");
    never.lazy = false;
    mgr->install(
        {spec(1, "192.0.2.1:51820", 25), spec(2, "192.0.2.2:51820"), spec(3, nullptr), never});
    EXPECT_EQ(state(4), PeerState::Connected);
    const size_t ops4 = wg.ops_for(key(4)).size();  // the install's
    mgr->on_rx_wake(0, now());
    mgr->on_rx_wake(1, now());
    uint64_t t = now();
    hold.slots[1].last_tx_ns = t + 60 * kSec;  // peer 2 keeps sending

    log.entries.clear();
    size_t updates = wg.updates.size();
    mgr->tick(t + 61 * kSec);
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_EQ(last_reason(1), "inactive for 1m");
    EXPECT_EQ(state(2), PeerState::Connected);
    EXPECT_EQ(state(4), PeerState::Connected);
    // Hold first; WireGuard keeps the session (the remote may still use its copy), and
    // only the keepalive goes.
    int h = log.find("dp hold 0"), upd = log.find("wg ");
    ASSERT_GE(h, 0);
    ASSERT_GE(upd, 0);
    EXPECT_LT(h, upd);
    EXPECT_EQ(log.find("wg remove"), -1);
    ASSERT_EQ(wg.updates.size(), updates + 1);
    {
        const auto& ops = wg.updates.back().peers;
        ASSERT_EQ(ops.size(), 1u);
        EXPECT_FALSE(ops[0].remove);
        EXPECT_TRUE(ops[0].update_only);
        EXPECT_EQ(ops[0].persistent_keepalive, std::optional<uint16_t>(0));
        EXPECT_FALSE(ops[0].endpoint.has_value());
    }
    EXPECT_EQ(hold.mode[0], SlotMode::Hold);
    EXPECT_EQ(st(1).last_error, "");
    EXPECT_EQ(st(1).failures, 0u);

    // Once the remote's copy must have expired (kSessionLifetime), WireGuard forgets it:
    // removed and re-added, without endpoint, with its allowed IPs (and routes).
    mgr->tick(t + 61 * kSec + 100 * kSec);
    EXPECT_EQ(log.find("wg remove"), -1);
    mgr->tick(t + 61 * kSec + 186 * kSec);
    ASSERT_GE(log.find("wg remove"), 0);
    {
        const auto& ops = wg.updates.back().peers;
        ASSERT_EQ(ops.size(), 2u);
        EXPECT_TRUE(ops[0].remove);
        EXPECT_EQ(ops[1].public_key, key(1));
        EXPECT_EQ(ops[1].allowed_ips, spec(1, nullptr).wg.allowed_ips);  // routes kept
        EXPECT_FALSE(ops[1].endpoint.has_value());
        EXPECT_EQ(ops[1].persistent_keepalive.value_or(0), 0);
    }
    EXPECT_EQ(hold.routes.at("10.0.0.1/32"), 0u);
    EXPECT_EQ(state(1), PeerState::Idle);

    mgr->tick(t + 250 * kSec);  // peer 2's traffic is old now too
    EXPECT_EQ(state(2), PeerState::Idle);
    EXPECT_EQ(state(4), PeerState::Connected);  // never lazy
    EXPECT_EQ(wg.ops_for(key(4)).size(), ops4);
    try {
        mgr->make_idle(key(4), "operator");
        ADD_FAILURE() << "make_idle on a never-lazy peer";
    } catch (const std::invalid_argument& e) {
        EXPECT_TRUE(contains(e.what(), "never lazy")) << e.what();
    }
    EXPECT_EQ(state(4), PeerState::Connected);
}

TEST_F(LazyLifecycleTest, LazyOffStopsIdling) {
    LazyOptions o = options();
    o.inactivity_threshold = 60s;
    make(o);
    install3();
    mgr->on_rx_wake(0, now());
    mgr->set_lazy(false);
    uint64_t t = now();
    mgr->tick(t + 3600 * kSec);
    mgr->tick(t + 7200 * kSec);
    EXPECT_EQ(state(1), PeerState::Connected);
    for (const auto& tr : transitions(1)) EXPECT_FALSE(contains(tr["reason"], "inactive"));
    EXPECT_THROW(mgr->make_idle(key(1), "operator"), std::invalid_argument);
}

TEST_F(LazyLifecycleTest, IdlePeersCarryNoWakeStateExceptABackoffToRemember) {
    // What keeps a million idle peers cheap: their wake state exists only while they
    // wake, are awake, or back off after a failure (issue 6).
    make();
    PeerSpec withpsk = spec(4, "192.0.2.4:51820");
    withpsk.wg.preshared_key = key(9);
    mgr->install(
        {spec(1, "192.0.2.1:51820", 25), spec(2, "192.0.2.2:51820"), spec(3, nullptr), withpsk});
    for (uint8_t n : {1, 2, 3, 4}) EXPECT_EQ(mgr->find(key(n))->wake, nullptr) << int(n);
    EXPECT_EQ(mgr->find(key(1))->extra, nullptr);  // nothing rare in its config
    ASSERT_NE(mgr->find(key(4))->extra, nullptr);
    EXPECT_EQ(mgr->find(key(4))->spec().wg.preshared_key, key(9));
    EXPECT_EQ(mgr->find(key(1))->spec().endpoint, "192.0.2.1:51820");
    EXPECT_EQ(mgr->find(key(1))->spec().keepalive, 25);

    // Woken, connected, then idle on request: back to no wake state, stats kept.
    packet(0);
    mgr->on_connect_done(ok(queue.jobs.back().job_id, "192.0.2.1:51820"));
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_NE(mgr->find(key(1))->wake, nullptr);
    mgr->make_idle(key(1), "operator");
    EXPECT_EQ(mgr->find(key(1))->wake, nullptr);
    EXPECT_EQ(st(1).wakes, 1u);
    EXPECT_GE(st(1).last_wake_ms, 0.0);

    // A failed wake: the backoff and the error must survive in the Idle state.
    fail_job(packet(1), "no route");
    EXPECT_EQ(state(2), PeerState::Idle);
    ASSERT_NE(mgr->find(key(2))->wake, nullptr);
    EXPECT_EQ(st(2).failures, 1u);
    EXPECT_NE(st(2).last_error.find("no route"), std::string::npos);
    EXPECT_GT(st(2).retry_in_ms, 0);
    EXPECT_GT(mgr->table_bytes(), 4 * sizeof(ManagedPeer));
}

// --- 5. Groups -------------------------------------------------------------------

TEST_F(LazyLifecycleTest, WakingAMemberStartsItsGroupsButNotMembersBackingOff) {
    LazyOptions o = options();
    o.backoff_base = 10s;
    make(o);
    mgr->install({in_groups(spec(1, "192.0.2.1:51820"), {"ha", "web"}),
                  in_groups(spec(2, "192.0.2.2:51820"), {"ha"}),
                  in_groups(spec(3, "192.0.2.3:51820"), {"ha"}), spec(4, "192.0.2.4:51820"),
                  in_groups(spec(5, "192.0.2.5:51820"), {"web"})});
    // Peer 3 wakes the whole of "ha" (and, through peer 1, "web"), then fails.
    packet(2);
    EXPECT_EQ(last_reason(3), "packet");
    EXPECT_EQ(last_reason(1), "group ha");
    EXPECT_EQ(last_reason(2), "group ha");
    EXPECT_EQ(last_reason(5), "group web");
    EXPECT_EQ(state(4), PeerState::Idle);
    EXPECT_EQ(queue.jobs.size(), 4u);
    fail_job(job_of(3), "no route");
    for (uint8_t n : {1, 2, 5}) mgr->make_idle(key(n), "operator");

    size_t jobs = queue.jobs.size();
    packet(0);
    EXPECT_EQ(last_reason(1), "packet");
    EXPECT_EQ(state(2), PeerState::Connecting);
    EXPECT_EQ(last_reason(2), "group ha");
    EXPECT_EQ(state(5), PeerState::Connecting);
    EXPECT_EQ(last_reason(5), "group web");
    EXPECT_EQ(state(3), PeerState::Idle);  // backing off
    EXPECT_EQ(state(4), PeerState::Idle);  // in no group
    EXPECT_EQ(queue.jobs.size(), jobs + 3);
}

TEST_F(LazyLifecycleTest, AGroupStaysConnectedWhileOneMemberIsActiveAndIdlesTogether) {
    LazyOptions o = options();
    o.inactivity_threshold = 60s;
    make(o);
    mgr->install({in_groups(spec(1, "192.0.2.1:51820"), {"ha"}),
                  in_groups(spec(2, "192.0.2.2:51820"), {"ha"}), spec(3, "192.0.2.3:51820")});
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(2), PeerState::Connecting);  // woken with its group
    mgr->on_rx_wake(1, now());
    mgr->on_rx_wake(2, now());
    ASSERT_EQ(mgr->status(false).connected, 3u);
    uint64_t t = now();
    hold.slots[1].last_rx_ns = t + 60 * kSec;  // only peer 2 is active

    mgr->tick(t + 61 * kSec);
    EXPECT_EQ(state(3), PeerState::Idle);       // same age as peer 1, no group
    EXPECT_EQ(state(1), PeerState::Connected);  // its group is active
    EXPECT_EQ(state(2), PeerState::Connected);

    size_t updates = wg.updates.size();
    mgr->tick(t + 200 * kSec);
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_EQ(state(2), PeerState::Idle);
    EXPECT_EQ(wg.updates.size(), updates);  // sessions kept; no keepalive to switch off
    // Peer 3 went first; 1 and 2 are forgotten together, in one update.
    mgr->tick(t + 61 * kSec + 186 * kSec);
    ASSERT_EQ(wg.updates.size(), updates + 1);
    EXPECT_EQ(wg.updates.back().peers.size(), 2u);
    mgr->tick(t + 200 * kSec + 186 * kSec);
    ASSERT_EQ(wg.updates.size(), updates + 2);
    EXPECT_EQ(wg.updates.back().peers.size(), 4u);
}

// --- 6. Remote wake --------------------------------------------------------------

TEST_F(LazyLifecycleTest, RemoteWakeOfAnIdlePeerNeedsNoConnectorAndWakesItsGroup) {
    make();
    mgr->install({in_groups(spec(1, "192.0.2.1:51820", 25), {"ha"}),
                  in_groups(spec(2, "192.0.2.2:51820"), {"ha"}), spec(3, "192.0.2.3:51820")});
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(1), PeerState::Connected);
    auto* t = find_transition("Idle", "Connected");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ((*t)["reason"], "remote");
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    // The only job is the group member's: peer 1 needed none.
    ASSERT_EQ(queue.jobs.size(), 1u);
    EXPECT_EQ(queue.jobs[0].req.peer, key(2));
    EXPECT_EQ(last_reason(2), "group ha");
    EXPECT_EQ(state(3), PeerState::Idle);
    // Only its keepalive is set: WireGuard has the endpoint the remote came from.
    auto ops = wg.ops_for(key(1));
    ASSERT_FALSE(ops.empty());
    EXPECT_TRUE(ops.back().update_only);
    EXPECT_FALSE(ops.back().endpoint.has_value());
    EXPECT_EQ(ops.back().persistent_keepalive.value_or(0), 25);
}

TEST_F(LazyLifecycleTest, RemoteWakeWhileTheConnectorRunsWinsAndItsAnswerIsIgnored) {
    make();
    install3();
    uint64_t job = packet(0, 7);
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(1), PeerState::Connected);
    auto* t = find_transition("Connecting", "Connected");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ((*t)["reason"], "remote");
    ASSERT_EQ(sink.sent.size(), 1u);  // the held packet went out
    EXPECT_EQ(sink.sent[0][0], 7);
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);

    size_t updates = wg.updates.size();
    mgr->on_connect_done(ok(job, "192.0.2.1:51820"));
    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_EQ(wg.updates.size(), updates);
    EXPECT_FALSE(mgr->find(key(1))->w().endpoint.has_value());
    EXPECT_EQ(transitions(1).size(), 2u);
}

TEST_F(LazyLifecycleTest, RxWakeFromBeforeTheLastIdleIsIgnored) {
    make();
    install3();
    mgr->on_rx_wake(0, now());
    uint64_t before_idle = now() - 1;
    mgr->make_idle(key(1), "operator");
    mgr->on_rx_wake(0, before_idle);
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_EQ(hold.mode[0], SlotMode::Hold);
    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(1), PeerState::Connected);
}

// --- 7. The idle race ------------------------------------------------------------

TEST_F(LazyLifecycleTest, PeerThatTalksWhileMadeIdleEndsIdleAndReconnects) {
    make();
    install3();
    mgr->on_rx_wake(0, now());
    flip_to_pass_after_first_set_mode(0);
    size_t jobs = queue.jobs.size();
    mgr->make_idle(key(1), "operator");
    auto tr = transitions(1);
    ASSERT_GE(tr.size(), 3u);
    EXPECT_EQ(tr[tr.size() - 2]["to"], "Idle");
    EXPECT_EQ(tr[tr.size() - 2]["reason"], "operator");
    EXPECT_EQ(tr.back()["from"], "Idle");
    EXPECT_EQ(tr.back()["to"], "Connecting");
    EXPECT_EQ(tr.back()["reason"], "remote");
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_EQ(queue.jobs.size(), jobs + 1);
    EXPECT_EQ(hold.mode[0], SlotMode::Hold);  // held again until the new endpoint
}

// The same race when a wake fails: the new wake must keep its own deadline.
TEST_F(LazyLifecycleTest, PeerThatTalksWhileItsFailedWakeIsUndoneKeepsADeadline) {
    make();
    install3();
    packet(0);
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    flip_to_pass_after_first_set_mode(0);
    uint64_t t = now();
    mgr->tick(t + 10 * kSec + kMs);
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_EQ(last_reason(1), "remote");
    EXPECT_EQ(queue.jobs.size(), 2u);

    hold.on_set_mode = nullptr;
    mgr->tick(t + 30 * kSec);  // past the new wake's deadline: its connector never answered
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_TRUE(contains(last_reason(1), "connector gave no answer")) << last_reason(1);
    EXPECT_EQ(st(1).failures, 2u);
}

// A group idles in one batch; a member that talks meanwhile wakes the rest again, even
// members the batch handles after it.
TEST_F(LazyLifecycleTest, GroupMemberThatTalksWhileTheGroupIdlesWakesTheGroup) {
    LazyOptions o = options();
    o.inactivity_threshold = 60s;
    make(o);
    mgr->install({in_groups(spec(1, "192.0.2.1:51820"), {"ha"}),
                  in_groups(spec(2, "192.0.2.2:51820"), {"ha"})});
    mgr->on_rx_wake(0, now());
    mgr->on_rx_wake(1, now());
    ASSERT_EQ(mgr->status(false).connected, 2u);
    flip_to_pass_after_first_set_mode(0);
    mgr->tick(now() + 61 * kSec);
    // Its session was kept, so the remote that talked is simply Connected again.
    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_EQ(last_reason(1), "remote");
    EXPECT_EQ(state(2), PeerState::Connecting);
    EXPECT_EQ(last_reason(2), "group ha");
}

// --- 8. Network-map updates ------------------------------------------------------

class LazyApplyTest : public LazyLifecycleTest {
  protected:
    // Peers 1, 2 (Connected by remote wakes), 3 and 4 (Idle); peer 2 also routes a subnet.
    void install4() {
        make();
        PeerSpec two = spec(2, "192.0.2.2:51820");
        two.wg.allowed_ips.push_back(*IpPrefix::parse("10.2.0.0/24"));
        mgr->install(
            {spec(1, "192.0.2.1:51820", 25), two, spec(3, nullptr), spec(4, "192.0.2.4:51820")});
        mgr->on_rx_wake(0, now());
        mgr->on_rx_wake(1, now());
    }
    // Peer 1 and 4 as they are; peer 2 routes another subnet; 3 is gone; 5 is new.
    std::vector<PeerSpec> next_map() const {
        PeerSpec two = spec(2, "192.0.2.2:51820");
        two.wg.allowed_ips.push_back(*IpPrefix::parse("10.3.0.0/24"));
        return {spec(1, "192.0.2.1:51820", 25), two, spec(4, "192.0.2.4:51820"),
                spec(5, "192.0.2.5:51820")};
    }
};

TEST_F(LazyApplyTest, CountsAndTouchesOnlyWhatChanged) {
    install4();
    size_t updates = wg.updates.size();
    MapDiff d = mgr->apply(next_map(), {}, false);
    EXPECT_EQ(d.added, 1u);
    EXPECT_EQ(d.removed, 1u);
    EXPECT_EQ(d.changed, 1u);
    EXPECT_EQ(d.unchanged, 2u);
    ASSERT_EQ(wg.updates.size(), updates + 1);
    std::unordered_map<WgKey, std::vector<PeerUpdate>, WgKeyHash> by_key;
    for (const auto& op : wg.updates.back().peers) by_key[op.public_key].push_back(op);
    EXPECT_EQ(by_key.count(key(1)), 0u);  // unchanged: no op at all, its session survives
    EXPECT_EQ(by_key.count(key(4)), 0u);
    ASSERT_EQ(by_key[key(2)].size(), 1u);
    const PeerUpdate& two = by_key[key(2)][0];
    EXPECT_FALSE(two.remove);
    EXPECT_TRUE(two.update_only);
    EXPECT_TRUE(two.replace_allowed_ips);
    EXPECT_EQ(two.allowed_ips, next_map()[1].wg.allowed_ips);
    ASSERT_EQ(by_key[key(3)].size(), 1u);
    EXPECT_TRUE(by_key[key(3)][0].remove);
    ASSERT_EQ(by_key[key(5)].size(), 1u);  // added: nothing stale to remove first
    EXPECT_FALSE(by_key[key(5)][0].remove);
    EXPECT_FALSE(by_key[key(5)][0].endpoint.has_value());  // added Idle

    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_EQ(state(2), PeerState::Connected);
    EXPECT_EQ(state(5), PeerState::Idle);
    EXPECT_EQ(mgr->find(key(3)), nullptr);
    EXPECT_EQ(mgr->size(), 4u);
    // Routes follow: peer 2 lost one subnet and gained one, peer 3's left, peer 5's came.
    EXPECT_EQ(hold.routes.count("10.2.0.0/24"), 0u);
    EXPECT_EQ(hold.routes.at("10.3.0.0/24"), 1u);
    EXPECT_EQ(hold.routes.at("10.0.0.2/32"), 1u);
    EXPECT_EQ(hold.routes.count("10.0.0.3/32"), 0u);
    EXPECT_EQ(hold.mode.count(2), 0u);  // its slot is gone
    // Peer 3's id is not reused by the map that freed it...
    EXPECT_EQ(mgr->find(key(5))->id, 4u);
    EXPECT_EQ(hold.routes.at("10.0.0.5/32"), 4u);
    EXPECT_EQ(hold.mode[4], SlotMode::Hold);
    // ...but by a later one.
    auto later = next_map();
    later.push_back(spec(6, nullptr));
    d = mgr->apply(later, {}, false);
    EXPECT_EQ(d.added, 1u);
    EXPECT_EQ(d.unchanged, 4u);
    EXPECT_EQ(mgr->find(key(6))->id, 2u);
    EXPECT_EQ(hold.routes.at("10.0.0.6/32"), 2u);
    EXPECT_EQ(hold.mode[2], SlotMode::Hold);
    EXPECT_EQ(state(6), PeerState::Idle);
}

TEST_F(LazyApplyTest, DryRunChangesNothing) {
    install4();
    auto routes = hold.routes;
    auto modes = hold.mode;
    size_t updates = wg.updates.size(), entries = log.entries.size(), events = trace.size();
    MapDiff d = mgr->apply(next_map(), {}, true);
    EXPECT_EQ(d.added, 1u);
    EXPECT_EQ(d.removed, 1u);
    EXPECT_EQ(d.changed, 1u);
    EXPECT_EQ(d.unchanged, 2u);
    EXPECT_EQ(wg.updates.size(), updates);
    EXPECT_EQ(log.entries.size(), entries);
    EXPECT_EQ(trace.size(), events);
    EXPECT_EQ(hold.routes, routes);
    EXPECT_EQ(hold.mode, modes);
    EXPECT_NE(mgr->find(key(3)), nullptr);
    EXPECT_EQ(mgr->find(key(5)), nullptr);
    EXPECT_EQ(mgr->find(key(2))->allowed_ips.size(), 2u);
    EXPECT_EQ(mgr->find(key(2))->allowed_ips[1].str(), "10.2.0.0/24");
}

TEST_F(LazyApplyTest, PrefixesMovingBetweenPeersEndAtTheNewOwner) {
    install4();
    auto map = next_map();
    // 10.2.0.0/24 goes from peer 2 (changed) to peer 4 (changed); peer 3's host route
    // goes to peer 5 (added) as peer 3 is removed.
    map[2].wg.allowed_ips.push_back(*IpPrefix::parse("10.2.0.0/24"));
    map[3].wg.allowed_ips.push_back(*IpPrefix::parse("10.0.0.3/32"));
    MapDiff d = mgr->apply(map, {}, false);
    EXPECT_EQ(d.changed, 2u);
    EXPECT_EQ(hold.routes.at("10.2.0.0/24"), mgr->find(key(4))->id);
    EXPECT_EQ(hold.routes.at("10.0.0.3/32"), mgr->find(key(5))->id);
    EXPECT_EQ(hold.routes.at("10.3.0.0/24"), mgr->find(key(2))->id);
}

TEST_F(LazyApplyTest, ADuplicateKeyFailsBeforeAnythingChanges) {
    install4();
    auto routes = hold.routes;
    size_t updates = wg.updates.size();
    auto map = next_map();
    map.push_back(spec(5, nullptr));
    try {
        mgr->apply(map, {}, false);
        ADD_FAILURE() << "a key twice was accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_TRUE(contains(e.what(), "appears twice")) << e.what();
        EXPECT_TRUE(contains(e.what(), key(5).base64())) << e.what();
    }
    EXPECT_EQ(wg.updates.size(), updates);
    EXPECT_EQ(hold.routes, routes);
    EXPECT_NE(mgr->find(key(3)), nullptr);
    EXPECT_EQ(mgr->find(key(5)), nullptr);
    EXPECT_EQ(mgr->size(), 4u);
}

TEST_F(LazyApplyTest, ExceedingTheDatapathCapacityFailsBeforeAnythingChanges) {
    install4();
    hold.cap = 5;  // room for one more id
    auto routes = hold.routes;
    size_t updates = wg.updates.size();
    auto map = next_map();
    map.push_back(spec(6, nullptr));  // 5 and 6 need ids 4 and 5
    EXPECT_THROW(mgr->apply(map, {}, false), std::invalid_argument);
    EXPECT_EQ(wg.updates.size(), updates);
    EXPECT_EQ(hold.routes, routes);
    EXPECT_NE(mgr->find(key(3)), nullptr);
    EXPECT_EQ(mgr->size(), 4u);
    // One new peer fits.
    MapDiff d = mgr->apply(next_map(), {}, false);
    EXPECT_EQ(d.added, 1u);
}

TEST_F(LazyApplyTest, AWireGuardFailureRestoresTheDatapath) {
    install4();
    auto map = next_map();
    map[2].wg.allowed_ips.push_back(*IpPrefix::parse("10.2.0.0/24"));
    map[3].wg.allowed_ips.push_back(*IpPrefix::parse("10.0.0.3/32"));
    auto routes = hold.routes;
    auto modes = hold.mode;
    wg.fail_next = true;
    EXPECT_THROW(mgr->apply(map, {}, false), WgError);
    EXPECT_EQ(hold.routes, routes);
    EXPECT_EQ(hold.mode, modes);
    EXPECT_EQ(mgr->size(), 4u);
    EXPECT_EQ(mgr->find(key(5)), nullptr);
    EXPECT_EQ(mgr->find(key(2))->allowed_ips[1].str(), "10.2.0.0/24");
    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_EQ(state(2), PeerState::Connected);
    // And the same map applies cleanly afterwards.
    MapDiff d = mgr->apply(map, {}, false);
    EXPECT_EQ(d.added, 1u);
    EXPECT_EQ(hold.routes.at("10.2.0.0/24"), mgr->find(key(4))->id);
}

WgKey big_key(uint32_t i) {
    WgKey k;
    k.bytes.fill(0xee);
    for (int b = 0; b < 4; ++b) k.bytes[b] = static_cast<uint8_t>(i >> (8 * b));
    return k;
}

IpPrefix host(uint32_t net, uint32_t i) {
    return *IpPrefix::parse(std::to_string(net) + "." + std::to_string(i >> 16 & 255) + "." +
                            std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255) + "/32");
}

PeerSpec big_spec(uint32_t i) {
    PeerSpec s;
    s.wg.public_key = big_key(i);
    s.wg.allowed_ips = {host(10, i)};
    s.endpoint = "192.0.2.1:51820";
    return s;
}

TEST_F(LazyApplyTest, HundredThousandPeersWithOnePercentChurn) {
    constexpr uint32_t kPeers = 100000;
    make();
    std::vector<PeerSpec> specs;
    specs.reserve(kPeers);
    for (uint32_t i = 0; i < kPeers; ++i) specs.push_back(big_spec(i));
    mgr->install(specs);
    for (uint32_t i = 0; i < kPeers; i += 10) mgr->on_rx_wake(i, now());  // 10%
    ASSERT_EQ(mgr->status(false).connected, kPeers / 10);
    trace.clear();

    // i % 100: 1 removed, 10 changed (Connected ones), the rest untouched; 1000 new.
    std::vector<PeerSpec> map;
    map.reserve(kPeers);
    std::set<WgKey> removed, changed, added;
    for (uint32_t i = 0; i < kPeers; ++i) {
        if (i % 100 == 1) {
            removed.insert(big_key(i));
            continue;
        }
        map.push_back(specs[i]);
        if (i % 100 == 10) {
            map.back().wg.allowed_ips.push_back(host(11, i));
            changed.insert(big_key(i));
        }
    }
    for (uint32_t i = kPeers; i < kPeers + 1000; ++i) {
        map.push_back(big_spec(i));
        added.insert(big_key(i));
    }
    size_t updates = wg.updates.size();
    auto start = std::chrono::steady_clock::now();
    MapDiff d = mgr->apply(std::move(map), {}, false);
    auto took = std::chrono::steady_clock::now() - start;
    std::printf("apply, 100k peers, 1%% churn: %.1f ms\n",
                std::chrono::duration<double, std::milli>(took).count());
    EXPECT_EQ(d.added, 1000u);
    EXPECT_EQ(d.removed, 1000u);
    EXPECT_EQ(d.changed, 1000u);
    EXPECT_EQ(d.unchanged, kPeers - 2000u);

    ASSERT_EQ(wg.updates.size(), updates + 1);
    std::unordered_map<WgKey, std::vector<PeerUpdate>, WgKeyHash> ops;
    for (const auto& op : wg.updates.back().peers) ops[op.public_key].push_back(op);
    EXPECT_EQ(wg.updates.back().peers.size(), 1000u + 1000u + 1000u);
    EXPECT_EQ(ops.size(), 3000u);
    for (const auto& [k, list] : ops) {
        if (removed.count(k)) {
            ASSERT_EQ(list.size(), 1u);
            EXPECT_TRUE(list[0].remove);
        } else if (changed.count(k)) {
            ASSERT_EQ(list.size(), 1u);
            EXPECT_TRUE(list[0].update_only);
            EXPECT_TRUE(list[0].replace_allowed_ips);
            EXPECT_EQ(list[0].allowed_ips.size(), 2u);
        } else if (added.count(k)) {
            ASSERT_EQ(list.size(), 1u);
            EXPECT_FALSE(list[0].remove);
        } else {
            ADD_FAILURE() << "an untouched peer got a WireGuard op: " << k.base64();
        }
    }
    size_t connected = 0;
    for (uint32_t i = 0; i < kPeers; i += 10) {
        const ManagedPeer* p = mgr->find(big_key(i));
        ASSERT_NE(p, nullptr);
        connected += p->state == PeerState::Connected;
    }
    EXPECT_EQ(connected, kPeers / 10);  // changed ones included: sessions kept
    LazyStatus s = mgr->status(false);
    EXPECT_EQ(s.connected, kPeers / 10);
    EXPECT_EQ(s.idle, kPeers - kPeers / 10);
    EXPECT_EQ(s.connecting, 0u);
    EXPECT_EQ(mgr->size(), kPeers);
    EXPECT_EQ(hold.routes.size(), kPeers + 1000u);  // + the changed peers' second prefixes
    EXPECT_EQ(hold.routes.count(host(10, 1).str()), 0u);
    EXPECT_EQ(hold.routes.at(host(11, 10).str()), 10u);
    EXPECT_EQ(hold.routes.at(host(10, kPeers).str()), kPeers);
    // No state changed but the removed peers' (Idle to gone).
    size_t moves = 0;
    for (const auto& e : trace) {
        if (e["event"] != "transition") continue;
        ++moves;
        EXPECT_EQ(e["reason"], "removed") << e.dump();
    }
    EXPECT_EQ(moves, 1000u);
}

TEST_F(LazyLifecycleTest, AnEndpointOnlyRespelledIsNoChangeAndAHostNameIsKeptAsWritten) {
    // Numeric endpoints are kept as addresses (no string per peer): the same address
    // written differently is the same peer setup; a host name stays text.
    make();
    mgr->install({spec(1, "[fd00:0::1]:51820"), spec(2, "vpn.example.net:51820")});
    EXPECT_EQ(mgr->find(key(1))->spec().endpoint, "[fd00::1]:51820");
    EXPECT_EQ(mgr->find(key(2))->spec().endpoint, "vpn.example.net:51820");
    ASSERT_NE(mgr->find(key(2))->extra, nullptr);
    MapDiff d =
        mgr->apply({spec(1, "[fd00::1]:51820"), spec(2, "vpn.example.net:51820")}, {}, true);
    EXPECT_EQ(d.unchanged, 2u);
    d = mgr->apply({spec(1, "[fd00::2]:51820"), spec(2, "vpn.example.org:51820")}, {}, true);
    EXPECT_EQ(d.changed, 2u);
}

// --- 9. Lazy mode at runtime -----------------------------------------------------

TEST_F(LazyLifecycleTest, LazyOffConnectsEveryIdlePeerWithAnEndpoint) {
    LazyOptions o = options();
    o.backoff_base = 10s;
    make(o);
    install3();
    packet(1);
    fail_job(job_of(2), "no route");  // backing off: connects all the same
    mgr->set_lazy(false);
    EXPECT_FALSE(mgr->lazy());
    EXPECT_EQ(state(1), PeerState::Connecting);
    EXPECT_EQ(last_reason(1), "lazy off");
    EXPECT_EQ(state(2), PeerState::Connecting);
    EXPECT_EQ(last_reason(2), "lazy off");
    EXPECT_EQ(state(3), PeerState::Idle);  // nothing to connect to
    ASSERT_EQ(events("mode"), 1u);
    for (const auto& e : trace) {
        if (e["event"] == "mode") {
            EXPECT_EQ(e["lazy"], false);
        }
    }
}

TEST_F(LazyLifecycleTest, LazyOnNeedsTheDatapathWhenTheAgentStartedEager) {
    LazyOptions o = options(false);
    o.inactivity_threshold = 60s;
    mgr = std::make_unique<LazyManager>(
        o, wg, nullptr, nullptr, queue,
        [this](const TraceEvent& ev) { trace.push_back(trace_json(ev)); });
    install3();
    EXPECT_EQ(state(1), PeerState::Connected);
    EXPECT_EQ(state(2), PeerState::Connected);
    EXPECT_EQ(state(3), PeerState::Idle);
    EXPECT_FALSE(mgr->has_datapath());
    EXPECT_THROW(mgr->set_lazy(true), std::logic_error);
    EXPECT_FALSE(mgr->lazy());
    EXPECT_TRUE(hold.mode.empty());

    mgr->attach_datapath(&hold, &sink);
    EXPECT_TRUE(mgr->has_datapath());
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    EXPECT_EQ(hold.mode[1], SlotMode::Pass);
    EXPECT_EQ(hold.mode[2], SlotMode::Hold);
    EXPECT_EQ(hold.routes.size(), 3u);
    EXPECT_THROW(mgr->attach_datapath(&hold, &sink), std::logic_error);
    mgr->set_lazy(true);
    EXPECT_TRUE(mgr->lazy());
    ASSERT_EQ(events("mode"), 1u);

    // Connected peers got a whole threshold from now, then idle.
    uint64_t t = now();
    mgr->tick(t + 59 * kSec);
    EXPECT_EQ(state(1), PeerState::Connected);
    mgr->tick(t + 65 * kSec);  // the next scan, 3 s (threshold / 20) later
    EXPECT_EQ(state(1), PeerState::Idle);
    EXPECT_EQ(state(2), PeerState::Idle);
    EXPECT_EQ(last_reason(1), "inactive for 1m");
}

}  // namespace
}  // namespace nb
