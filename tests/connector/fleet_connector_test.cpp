// The etcd connector answers from the fleet's directory; the store itself is
// tests/etcd's and tests/integration/fleet.sh's.
#include "agent/connector/connector.hpp"
#include "agent/fleet/node_directory.hpp"

#include <gtest/gtest.h>

#include "tests/support/keys.hpp"

namespace nb {
namespace {

using namespace std::chrono_literals;

ConnectRequest request_for(const WgKey& key, std::optional<std::string> endpoint = std::nullopt) {
    ConnectRequest r;
    r.peer = key;
    r.interface = "wg7";
    r.configured_endpoint = std::move(endpoint);
    return r;
}

using test::key_of;

StoreEntry entry(uint8_t b, std::vector<std::string> endpoints) {
    NodeRecord n;
    n.public_key = key_of(b);
    n.endpoints = std::move(endpoints);
    return {node_key("m", n.public_key), encode_node(n), false};
}

TEST(FleetConnector, DialsThePublishedEndpoint) {
    auto dir = std::make_shared<NodeDirectory>("m");
    dir->replace({entry(1, {"192.0.2.1:51820", "192.0.2.9:1"})}, 1);
    auto c = make_connector("etcd", {1s, dir});
    EXPECT_EQ(c->name(), "etcd");
    auto r = c->connect(request_for(key_of(1), "198.51.100.1:1"));
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->str(), "192.0.2.1:51820");
    // A move seen by the watch is the next wake's endpoint.
    dir->apply({entry(1, {"192.0.2.2:51820"})}, 2);
    EXPECT_EQ(c->connect(request_for(key_of(1))).endpoint->str(), "192.0.2.2:51820");
}

TEST(FleetConnector, FallsBackToTheConfiguredEndpoint) {
    auto dir = std::make_shared<NodeDirectory>("m");
    auto c = make_fleet_connector(dir);
    auto r = c->connect(request_for(key_of(2), "198.51.100.1:7"));
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->str(), "198.51.100.1:7");
    r = c->connect(request_for(key_of(2)));
    EXPECT_FALSE(r.endpoint);
    EXPECT_NE(r.error.find("not registered under /nbagent/m/nodes/"), std::string::npos) << r.error;
}

TEST(FleetConnector, NeedsAStore) {
    EXPECT_THROW(make_connector("etcd", {1s}), std::invalid_argument);
}

}  // namespace
}  // namespace nb
