// EtcdWatch against real etcd members: events in order from a start revision, a member
// killed under the stream (the next one streams on, nothing lost), every member down
// (reported, then caught up from the last revision once they are back), compaction.
#include <gtest/gtest.h>

#include <cstdlib>

#include "agent/etcd/etcd_client.hpp"
#include "agent/etcd/etcd_watch.hpp"
#include "tests/etcd/watch_recorder.hpp"
#include "tests/support/etcd_cluster.hpp"

namespace nb {
namespace {

using test::EtcdCluster;

EtcdWatchTiming fast() {
    EtcdWatchTiming t;
    t.backoff_min = std::chrono::milliseconds(20);
    t.backoff_max = std::chrono::milliseconds(200);
    return t;
}

std::vector<int64_t> mod_revisions(const std::vector<EtcdEvent>& events) {
    std::vector<int64_t> out;
    for (const EtcdEvent& e : events) out.push_back(e.kv.mod_revision);
    return out;
}

TEST(EtcdWatch, SeesPutsAndDeletesInOrderFromTheStartRevision) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    std::vector<int64_t> revs = {c.put("w/a", "1"), c.put("w/b", "2")};
    c.put("x", "outside the prefix");
    revs.push_back(c.put("w/a", "3"));
    revs.push_back(c.delete_range("w/b").revision);
    WatchRecorder seen;
    EtcdWatch w(test::etcd_options(etcd.endpoints()), {"w/", prefix_range_end("w/"), revs[0]},
                seen.callbacks());
    ASSERT_TRUE(seen.wait([&] { return seen.events.size() >= 4; }));
    revs.push_back(c.put("w/c", "4"));  // and what comes after
    ASSERT_TRUE(seen.wait([&] { return seen.events.size() >= 5; }));
    w.stop();
    std::lock_guard lk(seen.mu);
    EXPECT_EQ(mod_revisions(seen.events), revs);
    EXPECT_EQ(seen.events[2].kv.value, "3");
    EXPECT_EQ(seen.events[2].kv.version, 2);
    EXPECT_EQ(seen.events[3].type, EtcdEvent::Type::Delete);
    EXPECT_EQ(seen.events[3].kv.key, "w/b");
    EXPECT_EQ(seen.revisions.back(), revs.back());
    ASSERT_GE(seen.states.size(), 1u);
    EXPECT_TRUE(seen.states[0].first);
}

TEST(EtcdWatch, FromNowSeesOnlyLaterChanges) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    c.put("k", "before");
    WatchRecorder seen;
    EtcdWatch w(test::etcd_options(etcd.endpoints()), {"k", "", 0}, seen.callbacks());
    ASSERT_TRUE(seen.wait([&] { return !seen.states.empty(); }));
    const int64_t rev = c.put("k", "after");
    ASSERT_TRUE(seen.wait([&] { return !seen.events.empty(); }));
    w.stop();
    ASSERT_EQ(seen.events.size(), 1u);
    EXPECT_EQ(seen.events[0].kv.value, "after");
    EXPECT_EQ(seen.events[0].kv.mod_revision, rev);
}

TEST(EtcdWatch, ResumesOnAnotherMemberWhenItsMemberDiesWithoutLosingEvents) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(3);
    const std::vector<std::string> urls = etcd.endpoints();
    EtcdClient c(test::etcd_options({urls[1], urls[2], urls[0]}));  // writes never through member 0
    std::vector<int64_t> revs = {c.put("p/0", "v")};
    WatchRecorder seen;
    EtcdWatch w(test::etcd_options(urls), {"p/", prefix_range_end("p/"), revs[0]}, seen.callbacks(),
                fast());
    ASSERT_TRUE(seen.wait([&] { return seen.events.size() >= 1; }));
    EXPECT_EQ(seen.states.at(0), std::make_pair(true, urls[0]));
    const uint64_t streams = w.streams();
    etcd.kill(0);
    for (int i = 1; i <= 5; ++i) revs.push_back(c.put("p/" + std::to_string(i), "v"));
    ASSERT_TRUE(seen.wait([&] { return seen.events.size() >= 6; }));
    w.stop();
    EXPECT_EQ(mod_revisions(seen.events), revs);  // each once, in order
    EXPECT_GT(w.streams(), streams);
    std::lock_guard lk(seen.mu);
    EXPECT_EQ(seen.states.size(), 1u);  // another member took over: never disconnected
}

TEST(EtcdWatch, ReportsEveryMemberDownAndCatchesUpWhenTheyReturn) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(3);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    std::vector<int64_t> revs = {c.put("d/0", "v")};
    WatchRecorder seen;
    EtcdWatch w(test::etcd_options(etcd.endpoints()), {"d/", prefix_range_end("d/"), revs[0]},
                seen.callbacks(), fast());
    ASSERT_TRUE(seen.wait([&] { return seen.events.size() >= 1; }));
    for (size_t i = 0; i < 3; ++i) etcd.kill(i);
    ASSERT_TRUE(seen.wait([&] { return seen.states.size() >= 2; }));
    {
        std::lock_guard lk(seen.mu);
        EXPECT_FALSE(seen.states[1].first);
        for (const std::string& url : etcd.endpoints())
            EXPECT_NE(seen.states[1].second.find(url), std::string::npos) << seen.states[1].second;
    }
    EXPECT_THROW(c.put("d/lost", "v"), EtcdError);
    for (size_t i = 0; i < 3; ++i) etcd.start(i);
    for (size_t i = 0; i < 3; ++i) etcd.wait_ready(i);
    for (int i = 1; i <= 3; ++i) revs.push_back(c.put("d/" + std::to_string(i), "v"));
    ASSERT_TRUE(seen.wait([&] { return seen.events.size() >= 4; }));
    w.stop();
    EXPECT_EQ(mod_revisions(seen.events), revs);
    std::lock_guard lk(seen.mu);
    ASSERT_EQ(seen.states.size(), 3u);
    EXPECT_TRUE(seen.states[2].first);
}

TEST(EtcdWatch, ReportsACompactedStartAndGoesOnFromWhereTheOwnerSays) {
    NB_REQUIRE_ETCD();
    EtcdCluster etcd(1);
    EtcdClient c(test::etcd_options(etcd.endpoints()));
    const int64_t first = c.put("c/a", "1");
    c.put("c/a", "2");
    const int64_t last = c.put("c/b", "3");
    const std::string compact = "etcdctl --endpoints=" + etcd.endpoints()[0] + " compact " +
                                std::to_string(last) + " >/dev/null";
    ASSERT_EQ(std::system(compact.c_str()), 0) << compact;
    WatchRecorder seen;
    int64_t resynced_at = 0;
    seen.on_compacted = [&](int64_t) {  // the owner re-reads, then watches after its read
        EtcdRangeResult r = c.range_prefix("c/");
        resynced_at = r.revision;
        return r.revision + 1;
    };
    EtcdWatch w(test::etcd_options(etcd.endpoints()), {"c/", prefix_range_end("c/"), first},
                seen.callbacks());
    ASSERT_TRUE(seen.wait([&] { return !seen.compactions.empty(); }));
    const int64_t next = c.put("c/c", "4");
    ASSERT_TRUE(seen.wait([&] { return !seen.events.empty(); }));
    w.stop();
    EXPECT_EQ(seen.compactions, std::vector<int64_t>{last});
    EXPECT_EQ(resynced_at, last);
    EXPECT_EQ(mod_revisions(seen.events), std::vector<int64_t>{next});
}

}  // namespace
}  // namespace nb
