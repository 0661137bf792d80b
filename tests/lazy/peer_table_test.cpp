// PeerTable: ids, the key index and groups.
#include "agent/lazy/peer_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/lazy/fakes.hpp"

namespace nb {
namespace {

using test::key;

ManagedPeer peer(uint32_t id, uint8_t k, std::vector<std::string> groups = {}) {
    ManagedPeer p;
    p.id = id;
    p.key = key(k);
    p.in_use = true;
    if (!groups.empty()) {
        p.extra = std::make_unique<PeerExtra>();
        p.extra->groups = std::move(groups);
    }
    return p;
}

TEST(PeerTable, FindsByKeyAndId) {
    PeerTable t;
    t.put(peer(0, 1));
    t.put(peer(2, 3));  // a gap: slot 1 is free
    EXPECT_EQ(t.size(), 2u);
    EXPECT_EQ(t.slots(), 3u);
    ASSERT_NE(t.find(key(3)), nullptr);
    EXPECT_EQ(t.find(key(3))->id, 2u);
    EXPECT_EQ(t.find(key(2)), nullptr);
    EXPECT_NE(t.by_id(0), nullptr);
    EXPECT_EQ(t.by_id(1), nullptr);
    EXPECT_EQ(t.by_id(7), nullptr);
}

TEST(PeerTable, RemovedIdsAreReusedNewestFirstOnlyOnceTaken) {
    PeerTable t;
    for (uint32_t i = 0; i < 4; ++i) t.put(peer(i, static_cast<uint8_t>(i + 1)));
    t.remove(1);
    t.remove(3);
    EXPECT_EQ(t.find(key(2)), nullptr);
    EXPECT_EQ(t.by_id(1), nullptr);
    size_t reused = 0;
    EXPECT_EQ(t.next_ids(2, reused), (std::vector<uint32_t>{4, 5}));  // none freed yet
    EXPECT_EQ(reused, 0u);
    t.free_ids({1, 3});
    EXPECT_EQ(t.next_ids(3, reused), (std::vector<uint32_t>{3, 1, 4}));
    EXPECT_EQ(reused, 2u);
    t.take_free_ids(1);  // 3 is taken; 1 stays free
    EXPECT_EQ(t.next_ids(1, reused), (std::vector<uint32_t>{1}));
}

TEST(PeerTable, GroupsFollowTheMembers) {
    PeerTable t;
    t.put(peer(0, 1, {"db"}));
    t.put(peer(1, 2, {"db", "web"}));
    t.put(peer(2, 3));
    t.rebuild_groups();
    EXPECT_EQ(t.groups().at("db"), (std::vector<uint32_t>{0, 1}));
    EXPECT_EQ(t.groups().at("web"), (std::vector<uint32_t>{1}));
    t.remove(1);
    t.rebuild_groups();
    EXPECT_EQ(t.groups().at("db"), (std::vector<uint32_t>{0}));
    EXPECT_EQ(t.groups().count("web"), 0u);
}

TEST(PeerTable, BytesGrowWithPeers) {
    PeerTable t;
    size_t empty = t.bytes();
    t.reserve(1000, 1000);
    for (uint32_t i = 0; i < 1000; ++i) {
        ManagedPeer p = peer(i, 0);
        p.key.bytes[0] = static_cast<uint8_t>(i);
        p.key.bytes[1] = static_cast<uint8_t>(i >> 8);
        t.put(std::move(p));
    }
    EXPECT_EQ(t.size(), 1000u);
    EXPECT_GE(t.bytes(), empty + 1000 * sizeof(ManagedPeer));
}

}  // namespace
}  // namespace nb
