// TLS with client certificates: a member started with --client-cert-auth and a CA made
// for the test serves a client that shows its certificate, and refuses, clearly, one that
// does not or that does not trust the member.
#include <gtest/gtest.h>

#include "agent/etcd/etcd_client.hpp"
#include "agent/etcd/etcd_watch.hpp"
#include "tests/etcd/watch_recorder.hpp"
#include "tests/support/etcd_cluster.hpp"

namespace nb {
namespace {

class EtcdTls : public ::testing::Test {
  protected:
    void SetUp() override {
        NB_REQUIRE_ETCD();
        dir_ = test::make_temp_dir("nb-etcd-pki");
        pki_ = test::make_test_pki(dir_);
        etcd_ = std::make_unique<test::EtcdCluster>(1, &pki_);
    }
    void TearDown() override {
        etcd_.reset();
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }
    EtcdOptions options() const {
        EtcdOptions o;
        o.endpoints = etcd_->endpoints();
        o.ca_file = pki_.ca;
        o.cert_file = pki_.client_cert;
        o.key_file = pki_.client_key;
        return o;
    }
    std::string failure(const EtcdOptions& o) {
        EtcdClient c(o);
        try {
            c.put("k", "v");
        } catch (const EtcdError& e) {
            EXPECT_EQ(e.kind(), EtcdErrorKind::Unavailable);
            return e.what();
        }
        ADD_FAILURE() << "a put that should have been refused";
        return {};
    }

    std::string dir_;
    test::TestPki pki_;
    std::unique_ptr<test::EtcdCluster> etcd_;
};

TEST_F(EtcdTls, AClientWithItsCertificateWorks) {
    EXPECT_EQ(etcd_->endpoints()[0].rfind("https://", 0), 0u);
    EtcdClient c(options());
    WatchRecorder seen;
    EtcdWatch w(options(), {"k", "", 0}, seen.callbacks());
    ASSERT_TRUE(seen.wait([&] { return !seen.states.empty(); }));
    const int64_t rev = c.put("k", "v");
    EXPECT_EQ(c.range("k").kvs.at(0).value, "v");
    ASSERT_TRUE(seen.wait([&] { return !seen.events.empty(); }));
    w.stop();
    EXPECT_EQ(seen.events.at(0).kv.mod_revision, rev);
}

TEST_F(EtcdTls, WithoutACertificateOrTheCaItFailsByName) {
    EtcdOptions o = options();
    o.cert_file = o.key_file = "";
    std::string what = failure(o);
    EXPECT_NE(what.find(etcd_->endpoints()[0]), std::string::npos) << what;
    EXPECT_NE(what.find("no client certificate is configured"), std::string::npos) << what;
    o = options();
    o.ca_file = "";  // the system's CAs do not know the test's
    what = failure(o);
    EXPECT_NE(what.find("not trusted"), std::string::npos) << what;
}

TEST_F(EtcdTls, AKeyThatIsNoKeyIsRefusedAtTheStart) {
    EtcdOptions o = options();
    o.key_file = pki_.ca;  // a certificate, not a key
    try {
        EtcdClient c(o);
        ADD_FAILURE() << "a client with a certificate for a key";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(pki_.ca), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace nb
