// Registration and FleetSync against real etcd members (tests/support/etcd_cluster.hpp):
// a record appears in every directory, follows its node's endpoints, leaves with a clean
// stop or an expired lease; members going down are invisible, all of them down is "down",
// and coming back costs streams, not range reads.
#include <gtest/gtest.h>

#include "tests/support/keys.hpp"

#include <atomic>
#include <mutex>
#include <thread>

#include "agent/fleet/fleet_sync.hpp"
#include "agent/fleet/registration.hpp"
#include "tests/support/etcd_cluster.hpp"

namespace nb {
namespace {

using namespace std::chrono_literals;
using test::EtcdCluster;

using test::key_of;

// Polls until `pred` holds; false after `limit` (generous: correctness, not speed).
template <typename Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 20s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

// A node's record that a test can change while its registration runs.
struct Self {
    std::mutex mu;
    NodeRecord rec;
    explicit Self(uint8_t b) {
        rec.public_key = key_of(b);
        rec.endpoints = {"192.0.2." + std::to_string(b) + ":51820"};
        rec.allowed_ips = {*IpPrefix::parse("10.9.0." + std::to_string(b) + "/32")};
    }
    NodeRecord get() {
        std::lock_guard l(mu);
        return rec;
    }
    void move_to(std::string endpoint) {
        std::lock_guard l(mu);
        rec.endpoints = {std::move(endpoint)};
    }
};

// A directory kept by a FleetSync, with what it reported.
struct Watcher {
    std::shared_ptr<NodeDirectory> dir = std::make_shared<NodeDirectory>("m");
    std::atomic<int> changes{0}, moves{0};
    std::atomic<StoreState> state{StoreState::Connecting};
    std::unique_ptr<FleetSync> sync;
    Watcher(EtcdClient& c, const EtcdOptions& o) {
        FleetSyncCallbacks cb;
        cb.changed = [this](const DirectoryChange& ch) {
            ++changes;
            moves += static_cast<int>(ch.moved.size());
        };
        cb.state = [this](StoreState s, const std::string&) { state = s; };
        EtcdWatchTiming t;
        t.backoff_max = 500ms;
        sync = std::make_unique<FleetSync>(c, o, dir, cb, t);
    }
};

TEST(FleetStore, RegisteredNodesReachEveryDirectory) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient client(test::etcd_options(etcd.endpoints(), 2s));
    Self a(1), b(2);
    Registration ra(client, {"m", 3s, [&] { return a.get(); }, {}});
    Registration rb(client, {"m", 3s, [&] { return b.get(); }, {}});
    Watcher w(client, test::etcd_options(etcd.endpoints(), 2s));
    ASSERT_TRUE(eventually([&] { return w.dir->size() == 2; }));
    EXPECT_EQ(w.state, StoreState::Up);
    EXPECT_EQ(w.dir->endpoints_of(key_of(2)), b.get().endpoints);

    // A new underlay address is published at the next keepalive (a third of the TTL)
    // and reaches the directory as a move, not a map change.
    int changes = w.changes;
    b.move_to("192.0.2.99:51820");
    ASSERT_TRUE(eventually([&] { return w.dir->endpoints_of(key_of(2)) == b.get().endpoints; }));
    EXPECT_EQ(w.moves, 1);
    EXPECT_EQ(w.changes, changes + 1);
    EXPECT_EQ(rb.writes(), 2u);
    // Keepalives alone write nothing.
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(ra.writes(), 1u);

    // A clean stop revokes the lease: the node leaves every directory at once.
    ra.stop();
    ASSERT_TRUE(eventually([&] { return !w.dir->find(key_of(1)); }, 2s));
}

TEST(FleetStore, ADeadAgentsEntryExpires) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient client(test::etcd_options(etcd.endpoints(), 2s));
    // What a killed agent leaves: its record on a lease nobody keeps alive.
    NodeRecord dead = Self(5).get();
    client.put(node_key("m", dead.public_key), encode_node(dead), client.lease_grant(2).id);
    Watcher w(client, test::etcd_options(etcd.endpoints(), 2s));
    ASSERT_TRUE(eventually([&] { return w.dir->size() == 1; }));
    ASSERT_TRUE(eventually([&] { return w.dir->size() == 0; }, 15s));
}

TEST(FleetStore, MembersDownThenBack) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(3);
    EtcdClient client(test::etcd_options(etcd.endpoints(), 2s));
    Self a(1), b(2);
    Registration ra(client, {"m", 3s, [&] { return a.get(); }, {}});
    Watcher w(client, test::etcd_options(etcd.endpoints(), 2s));
    ASSERT_TRUE(eventually([&] { return w.dir->size() == 1; }));
    const int changes = w.changes;

    // A minority down: nothing to see, and what is written still arrives.
    etcd.kill(0);
    Registration rb(client, {"m", 3s, [&] { return b.get(); }, {}});
    ASSERT_TRUE(eventually([&] { return w.dir->size() == 2; }));
    EXPECT_EQ(w.state, StoreState::Up);

    // Everything down: the directory keeps what it had (wakes still find endpoints).
    etcd.kill(1);
    etcd.kill(2);
    ASSERT_TRUE(eventually([&] { return w.state == StoreState::Down; }));
    EXPECT_EQ(w.dir->size(), 2u);
    EXPECT_EQ(w.dir->endpoints_of(key_of(1)), a.get().endpoints);

    // Back: the watch resumes from its revision. No range read, and no change reported
    // when nothing changed (the registrations' leases survive a short outage).
    const uint64_t ranges = w.sync->range_reads();
    for (size_t i = 0; i < 3; ++i) etcd.start(i);
    for (size_t i = 0; i < 3; ++i) etcd.wait_ready(i);
    ASSERT_TRUE(eventually([&] { return w.state == StoreState::Up; }));
    EXPECT_EQ(w.sync->range_reads(), ranges);
    EXPECT_EQ(w.dir->size(), 2u);
    EXPECT_EQ(w.changes, changes + 1);  // rb's registration only
}

}  // namespace
}  // namespace nb
