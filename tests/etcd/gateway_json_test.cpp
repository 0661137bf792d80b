// The pieces without a server: base64, prefix ranges, endpoint URLs and options, and the
// gateway's JSON read defensively (a malformed reply names its field, never crashes).
#include <gtest/gtest.h>

#include "agent/etcd/base64.hpp"
#include "agent/etcd/etcd_client.hpp"
#include "agent/etcd/gateway_json.hpp"

namespace nb {
namespace {

using etcd::Json;

TEST(EtcdBase64, RoundTripsBytesAndRefusesWhatIsNotBase64) {
    for (const std::string& s : {std::string(), std::string("f"), std::string("fo"),
                                 std::string("foo"), std::string("\0\xff\x01", 3)}) {
        EXPECT_EQ(etcd::base64_decode(etcd::base64_encode(s)), s);
    }
    EXPECT_EQ(etcd::base64_encode("foo"), "Zm9v");
    EXPECT_EQ(etcd::base64_decode("YmFy"), "bar");
    EXPECT_EQ(etcd::base64_decode("YQ=="), "a");
    for (const char* bad : {"Zm9", "Zm9v!", "Y===", "=Zm9", "Zm 9", "YQ=a"})
        EXPECT_EQ(etcd::base64_decode(bad), std::nullopt) << bad;
}

TEST(EtcdPrefix, RangeEndCoversThePrefix) {
    EXPECT_EQ(prefix_range_end("nb/"), "nb0");
    EXPECT_EQ(prefix_range_end(std::string("a\xff", 2)), "b");
    EXPECT_EQ(prefix_range_end(std::string("\xff\xff", 2)), std::string(1, '\0'));
    EXPECT_EQ(prefix_range_end(""), std::string(1, '\0'));
}

TEST(EtcdEndpoint, ParsesHttpHttpsAndBracketedV6) {
    EtcdEndpoint a = parse_etcd_endpoint("http://127.0.0.1:2379");
    EXPECT_FALSE(a.tls);
    EXPECT_EQ(a.host, "127.0.0.1");
    EXPECT_EQ(a.port, 2379);
    EtcdEndpoint b = parse_etcd_endpoint("https://[::1]:2379/");
    EXPECT_TRUE(b.tls);
    EXPECT_EQ(b.host, "::1");
    EXPECT_EQ(b.url(), "https://[::1]:2379");
    EXPECT_EQ(parse_etcd_endpoint("http://etcd-1.example:2379").host, "etcd-1.example");
}

TEST(EtcdEndpoint, RefusesBadUrlsByName) {
    for (const char* bad :
         {"", "127.0.0.1:2379", "grpc://h:2379", "http://h", "http://h:", "http://h:0",
          "http://h:65536", "http://h:x", "http://:2379", "http://::1:2379", "http://[::1:2379",
          "http://h:2379/v3", "http://u@h:2379"}) {
        try {
            parse_etcd_endpoint(bad);
            ADD_FAILURE() << "accepted " << bad;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(std::string("'") + bad + "'"), std::string::npos)
                << e.what();
        }
    }
}

TEST(EtcdOptions, ValidationNamesTheProblem) {
    auto message = [](const EtcdOptions& o) {
        try {
            validate_etcd_options(o);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    EXPECT_NE(message({}).find("no endpoint"), std::string::npos);
    EtcdOptions o;
    o.endpoints = {"http://127.0.0.1:2379", "http//bad:1"};
    EXPECT_NE(message(o).find("'http//bad:1'"), std::string::npos);
    o.endpoints = {"https://127.0.0.1:2379"};
    o.cert_file = "/nonexistent/cert.pem";
    EXPECT_NE(message(o).find("go together"), std::string::npos);
    o.key_file = "/nonexistent/key.pem";
    EXPECT_NE(message(o).find("'/nonexistent/cert.pem'"), std::string::npos);
    o.cert_file = o.key_file = "";
    o.request_timeout = std::chrono::milliseconds(0);
    EXPECT_NE(message(o).find("request timeout"), std::string::npos);
    EXPECT_THROW(EtcdClient{o}, std::invalid_argument);
}

// The message of the Malformed error `f` throws.
template <class F>
std::string malformed(F&& f) {
    try {
        f();
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdErrorKind::Malformed) << e.what();
        return e.what();
    }
    ADD_FAILURE() << "no error";
    return {};
}

TEST(EtcdGatewayJson, DecodesARangeWithZeroFieldsLeftOut) {
    const Json reply = Json::parse(
        R"({"header":{"revision":"7"},"kvs":[{"key":"Zm9v","create_revision":"2",
        "mod_revision":"5","version":"3","value":"YmFy","lease":"99"},{"key":"YQ=="}],
        "count":"2"})");
    EtcdRangeResult r = etcd::decode_range(reply);
    EXPECT_EQ(r.revision, 7);
    EXPECT_EQ(r.count, 2);
    EXPECT_FALSE(r.more);
    ASSERT_EQ(r.kvs.size(), 2u);
    EXPECT_EQ(r.kvs[0], (EtcdKeyValue{"foo", "bar", 2, 5, 3, 99}));
    EXPECT_EQ(r.kvs[1], (EtcdKeyValue{"a", "", 0, 0, 0, 0}));
    EXPECT_EQ(etcd::decode_range(Json::parse(R"({"header":{"revision":"1"}})")).kvs.size(), 0u);
}

TEST(EtcdGatewayJson, MalformedRepliesNameTheField) {
    auto range = [](const char* text) {
        return malformed([&] { etcd::decode_range(Json::parse(text)); });
    };
    EXPECT_NE(range(R"({"header":{"revision":"x7"}})").find("'revision'"), std::string::npos);
    EXPECT_NE(range(R"({"header":{"revision":"99999999999999999999"}})").find("not an int64"),
              std::string::npos);
    EXPECT_NE(range(R"({"header":[]})").find("'header'"), std::string::npos);
    EXPECT_NE(range(R"({"kvs":{}})").find("'kvs'"), std::string::npos);
    EXPECT_NE(range(R"({"kvs":[{"key":"!!"}]})").find("kvs[0]: field 'key'"), std::string::npos);
    EXPECT_NE(range(R"({"kvs":[{"key":"YQ=="},{"key":5}]})").find("kvs[1]: field 'key'"),
              std::string::npos);
    EXPECT_NE(range(R"({"more":"yes"})").find("'more'"), std::string::npos);
    EXPECT_NE(range(R"([1,2])").find("not a JSON object"), std::string::npos);
    EXPECT_NE(malformed([] {
                  etcd::parse_reply("{\"header\":", "reply of /v3/kv/range");
              }).find("reply of /v3/kv/range: not JSON"),
              std::string::npos);
}

TEST(EtcdGatewayJson, ReadsWatchLines) {
    etcd::WatchResponse w = etcd::decode_watch_line(
        R"({"result":{"header":{"revision":"9"},"events":[{"kv":{"key":"YQ==","mod_revision":"8",
        "value":"MQ=="}},{"type":"DELETE","kv":{"key":"Yg==","mod_revision":"9"}}]}})");
    EXPECT_EQ(w.revision, 9);
    ASSERT_EQ(w.events.size(), 2u);
    EXPECT_EQ(w.events[0].type, EtcdEvent::Type::Put);
    EXPECT_EQ(w.events[0].kv.value, "1");
    EXPECT_EQ(w.events[1].type, EtcdEvent::Type::Delete);
    EXPECT_EQ(w.events[1].kv.key, "b");
    w = etcd::decode_watch_line(
        R"({"result":{"header":{},"canceled":true,"compact_revision":"3"}})");
    EXPECT_TRUE(w.canceled);
    EXPECT_EQ(w.compact_revision, 3);
    EXPECT_NE(malformed([] {
                  etcd::decode_watch_line(R"({"result":{"events":[{"type":"EXPIRE"}]}})");
              }).find("events[0]: field 'type'"),
              std::string::npos);
    EXPECT_NE(malformed([] { etcd::decode_watch_line(R"({"nothing":1})"); }).find("neither"),
              std::string::npos);
    try {
        etcd::decode_watch_line(R"({"error":{"grpc_code":14,"message":"etcdserver: no leader"}})");
        ADD_FAILURE() << "no error";
    } catch (const EtcdError& e) {
        EXPECT_EQ(e.kind(), EtcdErrorKind::Server);
        EXPECT_EQ(e.code(), 14);
        EXPECT_STREQ(e.what(), "etcdserver: no leader");
    }
}

TEST(EtcdGatewayJson, ReadsBothErrorShapes) {
    auto e = etcd::gateway_error(Json::parse(
        R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->code, 5);
    EXPECT_EQ(e->message, "etcdserver: requested lease not found");
    EXPECT_FALSE(etcd::gateway_error(Json::parse(R"({"header":{}})")));
    EXPECT_FALSE(etcd::gateway_error(Json::parse("[]")));
    EXPECT_EQ(etcd::gateway_error(Json::parse(R"({"error":7})"))->message,
              "an error without a message");
}

}  // namespace
}  // namespace nb
