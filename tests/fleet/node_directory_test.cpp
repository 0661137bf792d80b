#include "agent/fleet/node_directory.hpp"

#include <gtest/gtest.h>

#include "tests/support/keys.hpp"

namespace nb {
namespace {

using test::key_of;

NodeRecord node(uint8_t b, std::string endpoint = "") {
    NodeRecord n;
    n.public_key = key_of(b);
    n.endpoints = {endpoint.empty() ? "10.0.0." + std::to_string(b) + ":51820" : endpoint};
    n.allowed_ips = {*IpPrefix::parse("10.1.0." + std::to_string(b) + "/32")};
    return n;
}

StoreEntry put(const NodeRecord& n) {
    return {node_key("m", n.public_key), encode_node(n), false};
}
StoreEntry del(uint8_t b) {
    return {node_key("m", key_of(b)), "", true};
}

TEST(NodeDirectory, ReplaceThenEvents) {
    NodeDirectory d("m");
    DirectoryChange c = d.replace({put(node(1)), put(node(2))}, 10);
    EXPECT_TRUE(c.map_changed);
    EXPECT_EQ(d.size(), 2u);
    EXPECT_EQ(d.revision(), 10);
    EXPECT_EQ(d.endpoints_of(key_of(2)), std::vector<std::string>{"10.0.0.2:51820"});
    EXPECT_TRUE(d.endpoints_of(key_of(9)).empty());

    c = d.apply({put(node(3)), del(1)}, 12);
    EXPECT_TRUE(c.map_changed);
    EXPECT_TRUE(c.moved.empty());
    EXPECT_EQ(d.size(), 2u);
    EXPECT_FALSE(d.find(key_of(1)));
    EXPECT_EQ(d.revision(), 12);
}

// An endpoint change is a move, not a map change: no diff to apply, only the endpoint.
TEST(NodeDirectory, EndpointChangeIsAMove) {
    NodeDirectory d("m");
    d.replace({put(node(1)), put(node(2))}, 1);
    DirectoryChange c =
        d.apply({put(node(2, "10.9.9.9:51820")), put(node(2, "10.9.9.8:51820"))}, 3);
    EXPECT_FALSE(c.map_changed);
    EXPECT_EQ(c.moved, std::vector<WgKey>{key_of(2)});
    EXPECT_EQ(d.endpoints_of(key_of(2)), std::vector<std::string>{"10.9.9.8:51820"});
    // Same record again (a heartbeat rewrite): nothing at all.
    c = d.apply({put(node(2, "10.9.9.8:51820"))}, 4);
    EXPECT_FALSE(c.any());
}

TEST(NodeDirectory, ResyncWithNothingNewChangesNothing) {
    NodeDirectory d("m");
    d.replace({put(node(1)), put(node(2))}, 5);
    DirectoryChange c = d.replace({put(node(2)), put(node(1))}, 9);
    EXPECT_FALSE(c.any());
    EXPECT_EQ(d.revision(), 9);
}

TEST(NodeDirectory, ResyncFindsWhatChangedWhileAway) {
    NodeDirectory d("m");
    d.replace({put(node(1)), put(node(2)), put(node(3))}, 5);
    // 1 deleted, 2 moved, 3 unchanged, 4 new.
    DirectoryChange c = d.replace({put(node(2, "10.7.7.7:1")), put(node(3)), put(node(4))}, 20);
    EXPECT_TRUE(c.map_changed);
    EXPECT_EQ(c.moved, std::vector<WgKey>{key_of(2)});
    EXPECT_EQ(d.size(), 3u);
    EXPECT_FALSE(d.find(key_of(1)));

    NodeDirectory e("m");
    e.replace({put(node(1)), put(node(2))}, 5);
    // Only a deletion while away.
    EXPECT_TRUE(e.replace({put(node(2))}, 6).map_changed);
}

// A bad record is refused and takes the node's earlier record out with it.
TEST(NodeDirectory, BadRecordsAreRefusedNotHalfUsed) {
    NodeDirectory d("m");
    d.replace({put(node(1))}, 1);
    StoreEntry bad{node_key("m", key_of(1)), "{\"public_key\":42}", false};
    DirectoryChange c = d.apply({bad}, 2);
    EXPECT_TRUE(c.map_changed);
    ASSERT_EQ(c.rejected.size(), 1u);
    EXPECT_NE(c.rejected[0].find("public_key"), std::string::npos);
    EXPECT_EQ(d.size(), 0u);
    // Garbage under the prefix that never was a node changes nothing.
    c = d.apply({{d.prefix() + "junk", "x", false}, {d.prefix() + "junk", "", true}}, 3);
    EXPECT_FALSE(c.map_changed);
    EXPECT_EQ(c.rejected.size(), 1u);
}

TEST(NodeDirectory, NodesAreSortedByKey) {
    NodeDirectory d("m");
    d.replace({put(node(3)), put(node(1)), put(node(2))}, 1);
    auto all = d.nodes();
    ASSERT_EQ(all.size(), 3u);
    EXPECT_EQ(all[0].public_key, key_of(1));
    EXPECT_EQ(all[2].public_key, key_of(3));
}

}  // namespace
}  // namespace nb
