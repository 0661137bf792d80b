// EtcdClient against real etcd members on loopback (tests/support/etcd_cluster.hpp):
// keys, prefixes, deletes, a transaction, leases that expire and that are kept alive,
// failover when members are killed, and the request count.
#include <gtest/gtest.h>

#include <thread>

#include "agent/etcd/etcd_client.hpp"
#include "tests/support/etcd_cluster.hpp"

namespace nb {
namespace {

using test::EtcdCluster;

TEST(EtcdClient, PutsReadsPrefixesAndDeletes) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    const int64_t r1 = c.put("nb/a", "1");
    const int64_t r2 = c.put("nb/b", std::string("\0\xff", 2));
    c.put("nc", "outside");
    EXPECT_GT(r2, r1);
    EtcdRangeResult one = c.range("nb/a");
    ASSERT_EQ(one.kvs.size(), 1u);
    EXPECT_EQ(one.kvs[0].value, "1");
    EXPECT_EQ(one.kvs[0].mod_revision, r1);
    EXPECT_EQ(one.kvs[0].version, 1);
    EtcdRangeResult all = c.range_prefix("nb/");
    ASSERT_EQ(all.kvs.size(), 2u);
    EXPECT_EQ(all.kvs[1].key, "nb/b");
    EXPECT_EQ(all.kvs[1].value, std::string("\0\xff", 2));
    EXPECT_EQ(all.count, 2);
    EtcdRangeResult keys = c.range_prefix("nb/", {.limit = 1, .keys_only = true});
    ASSERT_EQ(keys.kvs.size(), 1u);
    EXPECT_EQ(keys.kvs[0].value, "");
    EXPECT_TRUE(keys.more);
    EXPECT_EQ(c.range_prefix("nb/", {.revision = r1}).kvs.size(), 1u);  // as it was then
    EXPECT_TRUE(c.range("nb/none").kvs.empty());
    EtcdDeleteResult d = c.delete_range("nb/", prefix_range_end("nb/"));
    EXPECT_EQ(d.deleted, 2);
    EXPECT_TRUE(c.range_prefix("nb/").kvs.empty());
    EXPECT_EQ(c.range("nc").kvs.size(), 1u);
}

TEST(EtcdClient, PutsIfTheModRevisionIsStillTheSame) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    EtcdTxnResult t = c.put_if_mod_revision("k", "first", 0);  // absent: created
    EXPECT_TRUE(t.succeeded);
    EXPECT_FALSE(c.put_if_mod_revision("k", "again", 0).succeeded);
    EXPECT_TRUE(c.put_if_mod_revision("k", "second", t.revision).succeeded);
    EXPECT_FALSE(c.put_if_mod_revision("k", "stale", t.revision).succeeded);
    EXPECT_EQ(c.range("k").kvs.at(0).value, "second");
}

TEST(EtcdClient, CallsFromSeveralThreadsAtOnce) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&c, t] {
            for (int i = 0; i < 25; ++i) {
                const std::string key = "t/" + std::to_string(t) + "/" + std::to_string(i);
                c.put(key, key);
                EXPECT_EQ(c.range(key).kvs.at(0).value, key);
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(c.range_prefix("t/", {.keys_only = true}).count, 100);
    EXPECT_EQ(c.requests(), 201u);
}

// Until `key` is gone; false after 30 s (a bound, not a speed check).
bool wait_gone(EtcdClient& c, const std::string& key) {
    for (int i = 0; i < 300; ++i) {
        if (c.range(key).kvs.empty()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

TEST(EtcdClient, ALeasedKeyGoesWhenTheLeaseExpires) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    EtcdLease l = c.lease_grant(1);
    EXPECT_NE(l.id, 0);
    EXPECT_GE(l.ttl, 1);
    c.put("leased", "v", l.id);
    EXPECT_EQ(c.range("leased").kvs.at(0).lease, l.id);
    EXPECT_TRUE(wait_gone(c, "leased"));
    EXPECT_EQ(c.lease_keepalive_once(l.id), 0);  // expired
    EXPECT_FALSE(c.lease_revoke(l.id));
    EtcdError e(EtcdErrorKind::Server, "");
    try {
        c.put("leased", "v", l.id);
        ADD_FAILURE() << "put with an expired lease";
    } catch (const EtcdError& err) {
        e = err;
    }
    EXPECT_EQ(e.kind(), EtcdErrorKind::Server);
    EXPECT_NE(std::string(e.what()).find("lease not found"), std::string::npos) << e.what();
}

TEST(EtcdClient, KeepaliveHoldsALeasePastItsTtlAndRevokeEndsIt) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    EtcdLease l = c.lease_grant(2);
    c.put("held", "v", l.id);
    // Three times the TTL, renewed every half second.
    for (int i = 0; i < 12; ++i) {
        EXPECT_GT(c.lease_keepalive_once(l.id), 0) << i;
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    EXPECT_EQ(c.range("held").kvs.size(), 1u);
    EXPECT_TRUE(c.lease_revoke(l.id));
    EXPECT_TRUE(c.range("held").kvs.empty());
}

TEST(EtcdClient, CountsRequestsAndFailsOverWhenMembersDie) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(3);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    c.put("k", "1");
    EXPECT_EQ(c.requests(), 1u);
    c.range_prefix("");
    EXPECT_EQ(c.requests(), 2u);
    etcd.kill(0);
    // Member 0 refuses, then member 1 answers (or, while it elects a new leader, says
    // so with a 503, and member 2 answers).
    EXPECT_EQ(c.range("k").kvs.at(0).value, "1");
    const uint64_t after_failover = c.requests();
    EXPECT_GE(after_failover, 4u);
    c.put("k", "2");  // straight to the member that answered
    EXPECT_EQ(c.requests(), after_failover + 1);
    etcd.kill(1);
    etcd.kill(2);
    try {
        c.range("k");
        ADD_FAILURE() << "a range with every member down";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdErrorKind::Unavailable);
        for (const std::string& url : etcd.endpoints())
            EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
    }
    EXPECT_EQ(c.requests(), after_failover + 4);  // each member once
}

}  // namespace
}  // namespace nb
