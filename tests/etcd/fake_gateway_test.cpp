// The client and the watch against a stand-in gateway (cpp-httplib's server, in this
// process), for what a real etcd never sends: malformed replies, 5xx, lines split across
// chunks, a stream that hangs. Also failover order and the request count.
#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "agent/etcd/etcd_client.hpp"
#include "agent/etcd/etcd_watch.hpp"
#include "tests/etcd/watch_recorder.hpp"
#include "tests/support/etcd_cluster.hpp"

namespace nb {
namespace {

class FakeGateway {
  public:
    FakeGateway() {
        port_ = srv.bind_to_any_port("127.0.0.1");
        thread_ = std::thread([this] { srv.listen_after_bind(); });
        while (!srv.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ~FakeGateway() {
        release = true;
        srv.stop();
        thread_.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    // A reply of `status` with `body` to every POST at `path`, counted in hits.
    void reply(const std::string& path, int status, const std::string& body) {
        srv.Post(path, [this, status, body](const httplib::Request&, httplib::Response& res) {
            ++hits;
            res.status = status;
            res.set_content(body, "application/json");
        });
    }

    httplib::Server srv;
    std::atomic<int> hits{0};
    std::atomic<bool> release{false};

  private:
    int port_ = 0;
    std::thread thread_;
};

// A loopback URL where nothing listens.
std::string closed_url() {
    return "http://127.0.0.1:" + std::to_string(test::free_ports(1)[0]);
}

EtcdOptions options(std::vector<std::string> endpoints) {
    EtcdOptions o;
    o.endpoints = std::move(endpoints);
    o.request_timeout = std::chrono::seconds(10);
    return o;
}

template <class F>
EtcdError error_of(F&& f) {
    try {
        f();
    } catch (const EtcdError& e) {
        return e;
    }
    ADD_FAILURE() << "no EtcdError";
    return EtcdError(EtcdErrorKind::Server, "");
}

const char* kRangeReply = R"({"header":{"revision":"4"},"kvs":[{"key":"YQ==","value":"Yg=="}]})";

TEST(EtcdFakeGateway, MalformedRepliesAreErrorsNamingTheField) {
    FakeGateway g;
    g.reply("/v3/kv/range", 200, R"({"header":{"revision":"abc"}})");
    g.reply("/v3/kv/put", 200, "<html>proxy error</html>");
    g.reply("/v3/lease/grant", 200, R"({"header":{"revision":"1"},"TTL":"5"})");
    EtcdClient c(options({g.url()}));
    EtcdError e = error_of([&] { c.range("a"); });
    EXPECT_EQ(e.kind(), EtcdErrorKind::Malformed);
    EXPECT_NE(std::string(e.what()).find("field 'revision'"), std::string::npos) << e.what();
    e = error_of([&] { c.put("a", "b"); });
    EXPECT_EQ(e.kind(), EtcdErrorKind::Malformed);
    EXPECT_NE(std::string(e.what()).find("not JSON: '<html>"), std::string::npos) << e.what();
    e = error_of([&] { c.lease_grant(5); });
    EXPECT_NE(std::string(e.what()).find("'ID'"), std::string::npos) << e.what();
    EXPECT_EQ(c.requests(), 3u);  // a malformed reply is not retried elsewhere
}

TEST(EtcdFakeGateway, GatewayErrorsCarryTheMessageAndCode) {
    FakeGateway g;
    g.reply("/v3/kv/range", 400,
            R"({"error":"etcdserver: bad","message":"etcdserver: bad","code":3})");
    g.reply(
        "/v3/lease/revoke", 404,
        R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})");
    EtcdClient c(options({g.url()}));
    EtcdError e = error_of([&] { c.range("a"); });
    EXPECT_EQ(e.kind(), EtcdErrorKind::Server);
    EXPECT_EQ(e.code(), 3);
    EXPECT_NE(std::string(e.what()).find("etcdserver: bad"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(g.url()), std::string::npos) << e.what();
    EXPECT_FALSE(c.lease_revoke(42));
}

TEST(EtcdFakeGateway, FailsOverPastUnreachableAndFailingMembersAndStays) {
    FakeGateway sick, good;
    sick.reply("/v3/kv/range", 503, R"({"error":"x","message":"etcdserver: no leader","code":14})");
    good.reply("/v3/kv/range", 200, kRangeReply);
    EtcdClient c(options({closed_url(), sick.url(), good.url()}));
    EtcdRangeResult r = c.range("a");
    ASSERT_EQ(r.kvs.size(), 1u);
    EXPECT_EQ(r.kvs[0].value, "b");
    EXPECT_EQ(c.requests(), 3u);
    c.range("a");  // straight to the member that answered
    EXPECT_EQ(c.requests(), 4u);
    EXPECT_EQ(sick.hits, 1);
    EXPECT_EQ(good.hits, 2);
}

TEST(EtcdFakeGateway, AMemberBetweenLeadersIsAskedAgainUntilItServes) {
    // Answers 503 "no leader" twice, as during an election, then serves.
    FakeGateway electing;
    electing.srv.Post("/v3/kv/range", [&](const httplib::Request&, httplib::Response& res) {
        if (++electing.hits <= 2) {
            res.status = 503;
            res.set_content(R"({"error":"x","message":"etcdserver: no leader","code":14})",
                            "application/json");
            return;
        }
        res.set_content(kRangeReply, "application/json");
    });
    EtcdClient c(options({closed_url(), electing.url()}));
    EXPECT_EQ(c.range("a").kvs.at(0).value, "b");
    EXPECT_EQ(electing.hits, 3);
    // Nobody up at all: one round, no waiting.
    EtcdClient d(options({closed_url(), closed_url()}));
    EXPECT_EQ(error_of([&] { d.range("a"); }).kind(), EtcdErrorKind::Unavailable);
    EXPECT_EQ(d.requests(), 2u);
}

TEST(EtcdFakeGateway, NoMemberAnsweringNamesEachAndWhy) {
    FakeGateway sick;
    sick.reply("/v3/kv/put", 503, R"({"error":"x","message":"etcdserver: no leader","code":14})");
    const std::string closed = closed_url();
    EtcdOptions o = options({closed, sick.url()});
    o.request_timeout = std::chrono::milliseconds(500);
    EtcdClient c(o);
    EtcdError e = error_of([&] { c.put("a", "b"); });
    EXPECT_EQ(e.kind(), EtcdErrorKind::Unavailable);
    const std::string what = e.what();
    EXPECT_NE(what.find(closed + ": connection refused"), std::string::npos) << what;
    EXPECT_NE(what.find(sick.url() + ": etcdserver: no leader (HTTP 503)"), std::string::npos)
        << what;
}

TEST(EtcdFakeGateway, ATransactionIsNotSentTwice) {
    FakeGateway sick, good;
    sick.reply("/v3/kv/txn", 503, "");
    good.reply("/v3/kv/txn", 200, R"({"header":{"revision":"3"},"succeeded":true})");
    EtcdClient c(options({sick.url(), good.url()}));
    EtcdError e = error_of([&] { c.put_if_mod_revision("a", "b", 0); });
    EXPECT_EQ(e.kind(), EtcdErrorKind::Unavailable);
    EXPECT_NE(std::string(e.what()).find("may have applied"), std::string::npos) << e.what();
    EXPECT_EQ(good.hits, 0);
    // Nothing listening: nothing sent, so the next member gets it.
    EtcdClient d(options({closed_url(), good.url()}));
    EtcdTxnResult t = d.put_if_mod_revision("a", "b", 0);
    EXPECT_TRUE(t.succeeded);
    EXPECT_EQ(t.revision, 3);
}

const char* kCreated = R"({"result":{"header":{"revision":"4"},"created":true}})";

TEST(EtcdFakeGateway, WatchJoinsSplitLinesAndResumesAfterTheLastRevision) {
    FakeGateway g;
    std::mutex mu;
    std::vector<std::string> bodies;
    g.srv.Post("/v3/watch", [&](const httplib::Request& req, httplib::Response& res) {
        size_t n;
        {
            std::lock_guard lk(mu);
            bodies.push_back(req.body);
            n = bodies.size();
        }
        res.set_chunked_content_provider("application/json", [&g, n](size_t,
                                                                     httplib::DataSink& sink) {
            const std::string created = kCreated;
            if (n == 1) {  // created, then two events split across chunks, then the end
                const std::string events =
                    R"({"result":{"header":{"revision":"6"},"events":[{"kv":{"key":"YQ==","mod_revision":"5"}},)"
                    R"({"type":"DELETE","kv":{"key":"YQ==","mod_revision":"6"}}]}})"
                    "\n";
                sink.write(created.data(), 10);
                sink.write(created.data() + 10, created.size() - 10);
                sink.write("\n", 1);
                sink.write(events.data(), 30);
                sink.write(events.data() + 30, events.size() - 30);
            } else {  // created, then silence until the test ends
                sink.write((created + "\n").data(), created.size() + 1);
                while (!g.release && sink.is_writable())
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
            }
            sink.done();
            return true;
        });
    });
    WatchRecorder seen;
    EtcdWatch w(options({closed_url(), g.url()}), {"a", "", 5}, seen.callbacks());
    ASSERT_TRUE(seen.wait([&] {
        std::lock_guard lk(mu);
        return bodies.size() >= 2 && seen.states.size() >= 1;
    }));
    w.stop();  // prompt although the stream is silent
    std::lock_guard lk(mu);
    ASSERT_EQ(seen.events.size(), 2u);
    EXPECT_EQ(seen.events[0].type, EtcdEvent::Type::Put);
    EXPECT_EQ(seen.events[1].type, EtcdEvent::Type::Delete);
    EXPECT_EQ(seen.revisions, std::vector<int64_t>{6});
    EXPECT_NE(bodies[0].find(R"("start_revision":"5")"), std::string::npos) << bodies[0];
    EXPECT_NE(bodies[1].find(R"("start_revision":"7")"), std::string::npos) << bodies[1];
    ASSERT_EQ(seen.states.size(), 1u);  // the member switch was no outage
    EXPECT_TRUE(seen.states[0].first);
    EXPECT_EQ(seen.states[0].second, g.url());
    EXPECT_EQ(w.streams(), 4u);  // closed, g, then round again: closed, g
}

TEST(EtcdFakeGateway, WatchReportsAMalformedStreamAsDisconnected) {
    FakeGateway g;
    g.srv.Post("/v3/watch", [&](const httplib::Request&, httplib::Response& res) {
        res.set_content(std::string(kCreated) + "\n" +
                            R"({"result":{"events":[{"kv":{"key":"YQ==","mod_revision":"x"}}]}})"
                            "\n",
                        "application/json");
    });
    WatchRecorder seen;
    EtcdWatchTiming fast;
    fast.backoff_min = fast.backoff_max = std::chrono::milliseconds(10);
    EtcdWatch w(options({g.url()}), {"a", prefix_range_end("a"), 0}, seen.callbacks(), fast);
    ASSERT_TRUE(seen.wait([&] { return seen.states.size() >= 2; }));
    w.stop();
    std::lock_guard lk(seen.mu);
    EXPECT_TRUE(seen.states[0].first);
    EXPECT_FALSE(seen.states[1].first);
    EXPECT_NE(seen.states[1].second.find("events[0].kv: field 'mod_revision'"), std::string::npos)
        << seen.states[1].second;
    EXPECT_TRUE(seen.events.empty());
}

TEST(EtcdFakeGateway, AWatchNeedsAKey) {
    EXPECT_THROW(EtcdWatch(options({closed_url()}), {"", "", 0}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace nb
