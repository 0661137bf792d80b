// The lazy manager while WireGuard does not answer or is gone, and when it is back
// (agent/lazy/wg_recovery.cpp), against the fakes of tests/lazy/fakes.hpp: FakeWg::down
// fails every call at once, as WgHealth does once WireGuard stopped answering.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/lazy/lazy_manager.hpp"
#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using namespace test;

constexpr uint64_t kSec = 1000000000ull;

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

IpPrefix host(uint8_t n) {
    return *IpPrefix::parse("10.0.0." + std::to_string(n) + "/32");
}

class WgRecoveryTest : public LazyFixture {
  protected:
    void SetUp() override {
        make();
        install3();  // ids 0, 1, 2: keys 1, 2, 3, all Idle
        wg.updates.clear();
    }
    // WireGuard as the agent left it after install3(): every peer idle.
    static WgDevice agreeing() {
        WgDevice d;
        for (uint8_t n = 1; n <= 3; ++n) {
            WgPeer p;
            p.public_key = key(n);
            p.allowed_ips = {host(n)};
            d.peers.push_back(p);
        }
        return d;
    }
    // Peer `id` (key id + 1) woken and its endpoint set: Connecting, awaiting the handshake.
    void awaiting(uint32_t id, const char* ep) {
        mgr->on_held_packet(id, pkt(1), now());
        mgr->on_connect_done(ok(queue.jobs.back().job_id, ep));
        ASSERT_TRUE(mgr->find(key(static_cast<uint8_t>(id + 1)))->w().awaiting_handshake);
    }
    void connected(uint32_t id, const char* ep) {
        awaiting(id, ep);
        mgr->on_rx_wake(id, now());
        ASSERT_EQ(state(id), PeerState::Connected);
    }
    PeerState state(uint32_t id) const {
        return mgr->find(key(static_cast<uint8_t>(id + 1)))->state;
    }
    const WakeState& wake(uint32_t id) const {
        return mgr->find(key(static_cast<uint8_t>(id + 1)))->w();
    }
    std::vector<nlohmann::json> events(const std::string& name) const {
        std::vector<nlohmann::json> out;
        for (const auto& e : trace)
            if (e["event"] == name) out.push_back(e);
        return out;
    }
};

// --- while WireGuard does not answer -------------------------------------------------

TEST_F(WgRecoveryTest, WakeWhileDownFailsAtOnceWithoutABackoff) {
    wg.down = true;
    mgr->on_held_packet(0, pkt(1), now());
    EXPECT_TRUE(queue.jobs.empty());  // no connector: nothing could be done with its answer
    EXPECT_EQ(state(0), PeerState::Idle);
    EXPECT_EQ(hold.released[0], 1u);  // the packet is dropped and the program told so
    EXPECT_EQ(wake(0).last_error, "WireGuard not answering: fake");
    EXPECT_EQ(wake(0).failures, 0u);
    EXPECT_EQ(wake(0).retry_after_ns, 0u);
    auto drops = events("drop");
    ASSERT_EQ(drops.size(), 1u);
    EXPECT_EQ(drops[0]["reason"], "wireguard");

    wg.down = false;  // back: the next packet wakes the peer at once
    mgr->on_held_packet(0, pkt(2), now());
    EXPECT_EQ(state(0), PeerState::Connecting);
}

TEST_F(WgRecoveryTest, EndpointThatCannotBeSetEndsTheWake) {
    mgr->on_held_packet(0, pkt(1), now());
    wg.down = true;
    mgr->on_connect_done(ok(queue.jobs[0].job_id, "192.0.2.1:51820"));
    EXPECT_EQ(state(0), PeerState::Idle);
    EXPECT_TRUE(contains(wake(0).last_error, "WireGuard not answering")) << wake(0).last_error;
    EXPECT_TRUE(hold.held(0));
}

TEST_F(WgRecoveryTest, ConnectTimeoutWhileDownStillEndsTheWake) {
    awaiting(0, "192.0.2.1:51820");
    wg.down = true;
    mgr->tick(now() + 11 * kSec);
    // Idle in the agent's books although WireGuard could not be told: not Connecting for
    // as long as WireGuard stays away.
    EXPECT_EQ(state(0), PeerState::Idle);
    EXPECT_TRUE(hold.held(0));
    EXPECT_EQ(wake(0).last_error, "no handshake within 10s (WireGuard not answering: fake)");
    EXPECT_EQ(mgr->status(false).connecting, 0u);
}

TEST_F(WgRecoveryTest, OperatorIdleWhileDownIsRefused) {
    connected(0, "192.0.2.1:51820");
    wg.down = true;
    try {
        mgr->make_idle(key(1), "operator");
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(contains(e.what(), "WireGuard not answering")) << e.what();
    }
    EXPECT_EQ(state(0), PeerState::Connected);
}

TEST_F(WgRecoveryTest, NoInactivityOrPollingWhileDown) {
    connected(0, "192.0.2.1:51820");
    wg.down = true;
    mgr->tick(now() + 3600 * kSec);             // far past the 15 min threshold
    EXPECT_EQ(state(0), PeerState::Connected);  // WireGuard still has it so
    EXPECT_EQ(wg.get_device_calls, 0);
}

// --- WireGuard lost -------------------------------------------------------------------

TEST_F(WgRecoveryTest, LostMakesEveryPeerIdleWithoutAWordToWireGuard) {
    connected(0, "192.0.2.1:51820");
    awaiting(1, "192.0.2.2:51820");
    mgr->on_held_packet(1, pkt(7), now());  // held for the handshake
    size_t updates = wg.updates.size();
    uint32_t released = hold.released[1];
    wg.down = true;
    mgr->wireguard_lost("device wgt is gone");
    EXPECT_EQ(wg.updates.size(), updates);
    for (uint32_t id : {0u, 1u}) {
        EXPECT_EQ(state(id), PeerState::Idle) << id;
        EXPECT_TRUE(hold.held(id)) << id;
        EXPECT_FALSE(wake(id).endpoint) << id;
    }
    EXPECT_EQ(hold.released[1], released + 1);  // the held packet is dropped
    auto t = events("transition");
    ASSERT_GE(t.size(), 2u);
    EXPECT_EQ(t[t.size() - 2]["reason"], "WireGuard lost: device wgt is gone");
    EXPECT_EQ(t.back()["reason"], "WireGuard lost: device wgt is gone");
    EXPECT_EQ(mgr->status(false).idle, 3u);
    EXPECT_EQ(wake(0).failures, 0u);  // not the peers' failure: no backoff
}

// --- WireGuard answers again ------------------------------------------------------------

TEST_F(WgRecoveryTest, AgreeingWireGuardIsLeftAlone) {
    DeviceUpdate device;
    device.listen_port = 51820;
    WgDevice dev = agreeing();
    dev.listen_port = 51820;
    ReconcileCounts n = mgr->reconcile(dev, device);
    EXPECT_EQ(n.added + n.fixed + n.removed, 0u);
    EXPECT_FALSE(n.device);
    EXPECT_TRUE(wg.updates.empty());  // not even an empty request
}

TEST_F(WgRecoveryTest, EndpointAppliedLateToAnIdlePeerIsUndone) {
    // A wake whose endpoint request timed out: the peer failed and is Idle, but WireGuard
    // applied the request when it resumed (and, with the keepalive, made a handshake).
    WgDevice dev = agreeing();
    dev.peers[0].endpoint = SockAddr::parse_numeric("192.0.2.1:51820");
    dev.peers[0].persistent_keepalive = 25;
    dev.peers[0].last_handshake_sec = 1700000000;
    ReconcileCounts n = mgr->reconcile(dev, {});
    EXPECT_EQ(n.fixed, 1u);
    auto ops = wg.ops_for(key(1));
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_TRUE(ops[0].remove);  // the only way WireGuard forgets endpoint and session
    EXPECT_FALSE(ops[1].remove);
    EXPECT_FALSE(ops[1].endpoint);
    EXPECT_EQ(ops[1].persistent_keepalive, 0);
    EXPECT_EQ(ops[1].allowed_ips, std::vector<IpPrefix>{host(1)});
    EXPECT_TRUE(wg.ops_for(key(2)).empty());
    EXPECT_TRUE(wg.ops_for(key(3)).empty());
}

TEST_F(WgRecoveryTest, PeerTheRemoteWokeMeanwhileIsLeftToItsReport) {
    WgDevice dev = agreeing();
    dev.peers[1].endpoint = SockAddr::parse_numeric("198.51.100.7:40000");
    dev.peers[1].last_handshake_sec = 1700000000;
    hold.mode[1] = SlotMode::Pass;  // the ingress program saw it talk
    mgr->reconcile(dev, {});
    EXPECT_TRUE(wg.ops_for(key(2)).empty());
}

TEST_F(WgRecoveryTest, NewDeviceGetsEveryPeerIdleAndTheDeviceSettings) {
    connected(0, "192.0.2.1:51820");
    wg.updates.clear();
    WgDevice empty;
    DeviceUpdate device;
    device.private_key = key(9);
    device.listen_port = 51820;
    mgr->wireguard_lost("device wgt is gone");
    ReconcileCounts n = mgr->reconcile(empty, device);
    EXPECT_EQ(n.added, 3u);
    EXPECT_TRUE(n.device);
    ASSERT_EQ(wg.updates.size(), 1u);  // one request
    EXPECT_EQ(wg.updates[0].private_key, key(9));
    EXPECT_EQ(wg.updates[0].listen_port, 51820);
    ASSERT_EQ(wg.updates[0].peers.size(), 3u);
    for (const auto& op : wg.updates[0].peers) {
        EXPECT_FALSE(op.remove);
        EXPECT_FALSE(op.endpoint);
        EXPECT_EQ(op.persistent_keepalive, 0);
        EXPECT_EQ(op.allowed_ips.size(), 1u);
    }
}

TEST_F(WgRecoveryTest, StrangersAreRemovedAndAllowedIpsAndKeysSetRight) {
    WgDevice dev = agreeing();
    WgPeer stranger;
    stranger.public_key = key(42);
    dev.peers.push_back(stranger);
    dev.peers[2].allowed_ips = {host(3), host(99)};  // a map applied half
    dev.peers[1].preshared_key = key(7);
    ReconcileCounts n = mgr->reconcile(dev, {});
    EXPECT_EQ(n.removed, 1u);
    EXPECT_EQ(n.fixed, 2u);
    auto gone = wg.ops_for(key(42));
    ASSERT_EQ(gone.size(), 1u);
    EXPECT_TRUE(gone[0].remove);
    auto ips = wg.ops_for(key(3));
    ASSERT_EQ(ips.size(), 1u);
    EXPECT_TRUE(ips[0].update_only);
    EXPECT_TRUE(ips[0].replace_allowed_ips);
    EXPECT_EQ(ips[0].allowed_ips, std::vector<IpPrefix>{host(3)});
    auto psk = wg.ops_for(key(2));
    ASSERT_EQ(psk.size(), 1u);
    EXPECT_EQ(psk[0].preshared_key, WgKey{});  // all zero: none
}

TEST_F(WgRecoveryTest, LivePeerGetsItsEndpointAndKeepaliveBack) {
    connected(0, "192.0.2.1:51820");  // keepalive 25 (install3)
    wg.updates.clear();
    // An idle whose request timed out and was applied late: WireGuard lost them.
    ReconcileCounts n = mgr->reconcile(agreeing(), {});
    EXPECT_EQ(n.fixed, 1u);
    auto ops = wg.ops_for(key(1));
    ASSERT_EQ(ops.size(), 1u);
    EXPECT_TRUE(ops[0].update_only);
    EXPECT_EQ(ops[0].endpoint, SockAddr::parse_numeric("192.0.2.1:51820"));
    EXPECT_EQ(ops[0].persistent_keepalive, 25);

    // A roamed endpoint is WireGuard's to keep.
    wg.updates.clear();
    WgDevice roamed = agreeing();
    roamed.peers[0].endpoint = SockAddr::parse_numeric("198.51.100.1:1234");
    roamed.peers[0].persistent_keepalive = 25;
    mgr->reconcile(roamed, {});
    EXPECT_TRUE(wg.updates.empty());
}

TEST_F(WgRecoveryTest, UdpEngineIdlePeersPointAtTheirListeners) {
    hold.udp = true;
    WgDevice dev = agreeing();
    dev.peers[0].endpoint = hold.idle_endpoint(0);                       // as it should be
    dev.peers[1].endpoint = SockAddr::parse_numeric("192.0.2.2:51820");  // applied late
    dev.peers[2].endpoint = hold.idle_endpoint(2);
    ReconcileCounts n = mgr->reconcile(dev, {});
    EXPECT_EQ(n.fixed, 1u);
    auto ops = wg.ops_for(key(2));
    ASSERT_EQ(ops.size(), 2u);
    EXPECT_EQ(ops[1].endpoint, hold.idle_endpoint(1));
}

TEST_F(WgRecoveryTest, FailedReconcileThrowsForTheNextTry) {
    WgDevice empty;
    wg.down = true;
    EXPECT_THROW(mgr->reconcile(empty, {}), WgError);
}

}  // namespace
}  // namespace nb
