// Sessions kept past Idle and found live at start (agent/lazy/kept_sessions.cpp),
// against the fakes. Time is what tick() is given.
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;
using namespace std::chrono_literals;

constexpr uint64_t kSec = 1'000'000'000ull;

class KeptSessionsTest : public LazyFixture {
  protected:
    // Peer 1 (keepalive 25) Connected by its remote, then Idle by inactivity at t + 61 s.
    uint64_t connected_then_idle() {
        LazyOptions o = options();
        o.inactivity_threshold = 60s;
        make(o);
        mgr->install({spec(1, "192.0.2.1:51820", 25)});
        mgr->on_rx_wake(0, now());
        const uint64_t t = now();
        mgr->tick(t + 61 * kSec);
        EXPECT_EQ(state(), PeerState::Idle);
        installed_removes = 1;
        return t + 61 * kSec;
    }
    // The install removes and re-adds every peer once: removes after that.
    size_t removes_since_install() const { return removes() - installed_removes; }
    size_t installed_removes = 0;
    PeerState state() const { return mgr->find(key(1))->state; }
    size_t removes() const {
        size_t n = 0;
        for (const auto& op : wg.ops_for(key(1))) n += op.remove;
        return n;
    }
};

// The defect: after this side idled, the remote's data under its still valid session was
// dropped here for ~15 s. Now WireGuard keeps the session, and the remote's packet makes
// the peer Connected again at once, with nothing removed.
TEST_F(KeptSessionsTest, RemoteTalkingToAKeptSessionIsConnectedAgainAtOnce) {
    const uint64_t idle_at = connected_then_idle();
    EXPECT_EQ(removes_since_install(), 0u);
    EXPECT_EQ(wg.ops_for(key(1)).back().persistent_keepalive, std::optional<uint16_t>(0));
    EXPECT_EQ(hold.mode[0], SlotMode::Hold);

    mgr->on_rx_wake(0, now());
    EXPECT_EQ(state(), PeerState::Connected);
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    EXPECT_EQ(wg.ops_for(key(1)).back().persistent_keepalive, std::optional<uint16_t>(25));
    hold.slots[0].last_rx_ns = idle_at + 200 * kSec;  // it keeps talking
    mgr->tick(idle_at + 200 * kSec);  // past the kept session's end: nothing to forget
    EXPECT_EQ(removes_since_install(), 0u);
    EXPECT_EQ(state(), PeerState::Connected);
}

// Our own packet wakes a kept peer with the session dropped first: the wake then starts
// with a fresh handshake, which is what its proof (and the replay order) relies on.
TEST_F(KeptSessionsTest, OurPacketWakesAKeptPeerWithAFreshSession) {
    const uint64_t idle_at = connected_then_idle();
    mgr->on_held_packet(0, pkt(1), now());
    ASSERT_EQ(queue.jobs.size(), 1u);
    const size_t updates = wg.updates.size();
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    ASSERT_EQ(wg.updates.size(), updates + 1);
    const auto& ops = wg.updates.back().peers;
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_TRUE(ops[0].remove);
    EXPECT_FALSE(ops[1].update_only);
    EXPECT_EQ(ops[1].endpoint->str(), "192.0.2.1:51820");
    EXPECT_EQ(ops[1].allowed_ips, spec(1, nullptr).wg.allowed_ips);
    EXPECT_EQ(sink.sent.size(), 1u);  // replayed
    EXPECT_EQ(removes_since_install(), 1u);
    (void)idle_at;
}

// The session is forgotten only once no side can use it: a handshake the remote renewed
// meanwhile (its keepalives rekey it) pushes that out.
TEST_F(KeptSessionsTest, ForgottenOnlyAfterTheNewestHandshakeExpired) {
    const uint64_t idle_at = connected_then_idle();
    mgr->tick(idle_at + 100 * kSec);
    EXPECT_EQ(removes_since_install(), 0u);
    wg.handshakes[key(1)] = std::time(nullptr) - 10;  // renewed by the remote
    mgr->tick(idle_at + 186 * kSec);
    EXPECT_EQ(removes_since_install(), 0u);
    EXPECT_EQ(state(), PeerState::Idle);
    wg.handshakes[key(1)] = std::time(nullptr) - 400;
    mgr->tick(idle_at + 186 * kSec + 176 * kSec);
    EXPECT_EQ(removes_since_install(), 1u);
    const auto ops = wg.ops_for(key(1));
    EXPECT_FALSE(ops.back().endpoint.has_value());
    EXPECT_EQ(state(), PeerState::Idle);
}

// A restart must cost an active remote nothing: a peer with a live session in WireGuard
// is adopted Connected and left as it is; a stale one is made Idle as before, and a
// WireGuard peer the map lacks is removed (not with replace_peers: it would drop every
// session).
TEST_F(KeptSessionsTest, InstallKeepsLiveSessions) {
    make();
    WgDevice current;
    const int64_t now = std::time(nullptr);
    auto peer = [&](uint8_t n, int64_t age) {
        WgPeer p;
        p.public_key = key(n);
        p.endpoint = SockAddr::parse_numeric("198.51.100." + std::to_string(n) + ":51820");
        p.last_handshake_sec = age < 0 ? 0 : now - age;
        current.peers.push_back(p);
    };
    peer(1, 10);   // live
    peer(2, 400);  // expired
    peer(3, -1);   // never
    peer(9, 5);    // live, but not in the map
    DeviceUpdate update;
    update.replace_peers = true;
    mgr->install({spec(1, "192.0.2.1:51820", 25), spec(2, "192.0.2.2:51820"), spec(3, nullptr)},
                 update, &current);
    EXPECT_EQ(mgr->find(key(1))->state, PeerState::Connected);
    EXPECT_EQ(mgr->find(key(2))->state, PeerState::Idle);
    EXPECT_EQ(mgr->find(key(3))->state, PeerState::Idle);
    EXPECT_EQ(hold.mode[0], SlotMode::Pass);
    EXPECT_EQ(hold.mode[1], SlotMode::Hold);
    const DeviceUpdate& u = wg.updates.back();
    EXPECT_FALSE(u.replace_peers);
    auto one = wg.ops_for(key(1));
    ASSERT_EQ(one.size(), 1u);
    EXPECT_TRUE(one[0].update_only);
    EXPECT_FALSE(one[0].remove);
    EXPECT_FALSE(one[0].endpoint.has_value());  // WireGuard's own (maybe roamed) endpoint stays
    EXPECT_TRUE(one[0].replace_allowed_ips);
    EXPECT_EQ(one[0].persistent_keepalive, std::optional<uint16_t>(25));
    EXPECT_TRUE(wg.ops_for(key(2)).front().remove);
    EXPECT_TRUE(wg.ops_for(key(3)).front().remove);
    auto nine = wg.ops_for(key(9));
    ASSERT_EQ(nine.size(), 1u);
    EXPECT_TRUE(nine[0].remove);
    EXPECT_EQ(mgr->status(true).connected, 1u);
}

}  // namespace
}  // namespace nb
