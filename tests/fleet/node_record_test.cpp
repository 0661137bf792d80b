#include "agent/fleet/node_record.hpp"

#include <gtest/gtest.h>

#include "tests/support/keys.hpp"

namespace nb {
namespace {

using test::key_of;

NodeRecord sample() {
    NodeRecord n;
    n.public_key = key_of(7);
    n.endpoints = {"10.240.0.7:51820", "[fd00::7]:51820"};
    n.allowed_ips = {*IpPrefix::parse("10.241.0.7/32"), *IpPrefix::parse("fd41::7/128")};
    n.groups = {"db", "web"};
    n.lazy = false;
    n.version = "0.1.0";
    return n;
}

const std::string kPrefix = nodes_prefix("m1");

TEST(NodeRecord, RoundTrips) {
    NodeRecord n = sample();
    EXPECT_EQ(decode_node(kPrefix, node_key("m1", n.public_key), encode_node(n)), n);
}

TEST(NodeRecord, KeyIsPrefixAndHex) {
    std::string hex;
    for (int i = 0; i < 32; ++i) hex += "ab";
    EXPECT_EQ(node_key("m1", key_of(0xab)), "/nbagent/m1/nodes/" + hex);
}

TEST(NodeRecord, MeshNames) {
    EXPECT_NO_THROW(check_mesh_name("prod-eu.1_a"));
    EXPECT_THROW(check_mesh_name(""), NodeRecordError);
    EXPECT_THROW(check_mesh_name("a/b"), NodeRecordError);
    EXPECT_THROW(check_mesh_name(std::string(65, 'a')), NodeRecordError);
}

TEST(NodeRecord, SamePeerIgnoresEndpointsAndVersion) {
    NodeRecord a = sample(), b = sample();
    b.endpoints = {"10.240.0.8:51820"};
    b.version = "0.2.0";
    EXPECT_TRUE(a.same_peer(b));
    b.lazy = true;
    EXPECT_FALSE(a.same_peer(b));
}

// Each malformed value is refused with the key and the field named.
TEST(NodeRecord, RefusesWhatANodeDoesNotWrite) {
    const std::string key = node_key("m1", key_of(7));
    const std::string pk = key_of(7).base64();
    struct Case {
        std::string value, needle;
    } cases[] = {
        {"not json", "not a JSON object"},
        {"[1]", "not a JSON object"},
        {R"({"endpoints":[]})", "public_key is missing"},
        {R"({"public_key":"zz"})", "not a WireGuard key"},
        {R"({"public_key":")" + key_of(8).base64() + R"("})", "differs from the key's"},
        {R"({"public_key":")" + pk + R"(","endpoints":"1.2.3.4:5"})", "endpoints is not a list"},
        {R"({"public_key":")" + pk + R"(","endpoints":["1.2.3.4"]})", "endpoints[0] '1.2.3.4'"},
        {R"({"public_key":")" + pk + R"(","endpoints":[5]})", "endpoints[0] is not a string"},
        {R"({"public_key":")" + pk + R"(","allowed_ips":["10.0.0.0/33"]})", "allowed_ips[0]"},
        {R"({"public_key":")" + pk + R"(","groups":["a b"]})", "groups[0] 'a b'"},
        {R"({"public_key":")" + pk + R"(","lazy":"yes"})", "lazy is not true or false"},
    };
    for (const Case& c : cases) {
        try {
            decode_node(kPrefix, key, c.value);
            ADD_FAILURE() << "accepted: " << c.value;
        } catch (const NodeRecordError& e) {
            std::string what = e.what();
            EXPECT_NE(what.find(key), std::string::npos) << what;
            EXPECT_NE(what.find(c.needle), std::string::npos) << c.value << " -> " << what;
        }
    }
}

TEST(NodeRecord, RefusesKeysThatAreNotANodes) {
    const std::string value = encode_node(sample());
    EXPECT_THROW(decode_node(kPrefix, "/nbagent/other/nodes/" + key_of(7).hex(), value),
                 NodeRecordError);
    EXPECT_THROW(decode_node(kPrefix, kPrefix + "not-hex", value), NodeRecordError);
}

TEST(NodeRecord, RefusesHugeValues) {
    std::string value = R"({"public_key":")" + key_of(7).base64() + R"(","version":")" +
                        std::string(70000, 'x') + R"("})";
    EXPECT_THROW(decode_node(kPrefix, node_key("m1", key_of(7)), value), NodeRecordError);
}

TEST(NodeRecord, AbsentFieldsTakeDefaults) {
    NodeRecord n =
        decode_node(kPrefix, node_key("m1", key_of(7)),
                    R"({"public_key":")" + key_of(7).base64() + R"(","groups":["b","a","b"]})");
    EXPECT_TRUE(n.endpoints.empty());
    EXPECT_TRUE(n.lazy);
    EXPECT_EQ(n.groups, (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace nb
