// UapiControl against a real UNIX socket served by a thread that plays back canned
// wireguard-go replies: checks the exact request text and the parsed result or error.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "agent/wg/uapi_control.hpp"
#include "agent/wg/uapi_exchange.hpp"
#include "tests/support/fuzz_seed.hpp"
#include "tests/support/net_values.hpp"

namespace nb {
namespace {

WgKey key_of(uint8_t fill) {
    WgKey k;
    k.bytes.fill(fill);
    k.bytes[0] = static_cast<uint8_t>(fill ^ 0x5a);
    return k;
}

using test::endpoint;
using test::prefix;

struct Canned {
    std::string reply;
    bool hang = false;  // send the reply, then keep the connection open without more
    std::chrono::milliseconds read_after{0};   // a stopped daemon: reads only after this
    std::chrono::milliseconds reply_after{0};  // ... or answers only after this
};

// Accepts one connection per canned reply, in order; records each request.
class CannedServer {
  public:
    explicit CannedServer(std::vector<Canned> replies) : replies_(std::move(replies)) {
        for (const Canned& c : replies_) test::fuzz_seed("uapi_get_reply", c.reply);
        char tmpl[] = "/tmp/nbt-uapi-XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir_ = tmpl;
        path_ = dir_ + "/wgtest.sock";
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::strcpy(sun.sun_path, path_.c_str());
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 ||
            ::listen(fd_, 8) != 0)
            throw std::runtime_error("bind/listen failed");
        thread_ = std::thread([this] { serve(); });
    }
    ~CannedServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
        std::filesystem::remove_all(dir_);
    }
    const std::string& dir() const { return dir_; }
    std::vector<std::string> requests() {
        std::lock_guard<std::mutex> lock(mu_);
        return requests_;
    }

  private:
    bool wait_readable(int fd) {
        while (!stop_) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 20) > 0) return true;
        }
        return false;
    }

    void pause(std::chrono::milliseconds d) {
        auto until = std::chrono::steady_clock::now() + d;
        while (!stop_ && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }

    void serve() {
        for (const Canned& c : replies_) {
            if (!wait_readable(fd_)) return;
            int conn = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn < 0) return;
            pause(c.read_after);
            std::string req;
            char buf[65536];
            while (req.find("\n\n") == std::string::npos && wait_readable(conn)) {
                ssize_t n = ::read(conn, buf, sizeof buf);
                if (n <= 0) break;
                req.append(buf, static_cast<size_t>(n));
            }
            {
                std::lock_guard<std::mutex> lock(mu_);
                requests_.push_back(req);
            }
            pause(c.reply_after);
            (void)!::write(conn, c.reply.data(), c.reply.size());
            if (c.hang)
                while (!stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            ::close(conn);
        }
    }

    std::vector<Canned> replies_;
    std::string dir_, path_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mu_;
    std::vector<std::string> requests_;
};

// Runs get_device against one canned reply and returns the WgError text ("" if none).
std::string get_error(const std::string& reply) {
    CannedServer server({{reply}});
    UapiControl ctl("wgtest", server.dir());
    try {
        ctl.get_device();
    } catch (const WgError& e) {
        return e.what();
    }
    return "";
}

const std::string kPriv = std::string(62, '0') + "a1";

TEST(UapiProtocol, ParsesFullDump) {
    WgKey a = key_of(0x11), b = key_of(0x22), psk = key_of(0x33);
    std::string reply = "private_key=" + key_of(0x44).hex() +
                        "\n"
                        "listen_port=51820\n"
                        "fwmark=4660\n"
                        "public_key=" +
                        a.hex() + "\npreshared_key=" + psk.hex() +
                        "\n"
                        "protocol_version=1\n"
                        "endpoint=192.0.2.7:51000\n"
                        "last_handshake_time_sec=1700000000\n"
                        "last_handshake_time_nsec=123\n"
                        "tx_bytes=1000\n"
                        "rx_bytes=18446744073709551615\n"
                        "persistent_keepalive_interval=25\n"
                        "allowed_ip=10.0.0.2/32\n"
                        "allowed_ip=fd00::/64\n"
                        "some_future_key=whatever\n"
                        "public_key=" +
                        b.hex() + "\npreshared_key=" + std::string(64, '0') +
                        "\n"
                        "endpoint=[2001:db8::1]:7\n"
                        "errno=0\n\n";
    CannedServer server({{reply}});
    UapiControl ctl("wgtest", server.dir());
    EXPECT_EQ(ctl.backend(), WgBackend::Userspace);
    WgDevice d = ctl.get_device();
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(server.requests()[0], "get=1\n\n");
    ASSERT_TRUE(d.private_key);
    EXPECT_EQ(*d.private_key, key_of(0x44));
    EXPECT_EQ(d.listen_port, 51820);
    EXPECT_EQ(d.fwmark, 4660u);
    ASSERT_EQ(d.peers.size(), 2u);
    const WgPeer& p = d.peers[0];
    EXPECT_EQ(p.public_key, a);
    ASSERT_TRUE(p.preshared_key);
    EXPECT_EQ(*p.preshared_key, psk);
    ASSERT_TRUE(p.endpoint);
    EXPECT_EQ(p.endpoint->str(), "192.0.2.7:51000");
    EXPECT_EQ(p.last_handshake_sec, 1700000000);
    EXPECT_EQ(p.tx_bytes, 1000u);
    EXPECT_EQ(p.rx_bytes, 18446744073709551615ull);
    EXPECT_EQ(p.persistent_keepalive, 25);
    ASSERT_EQ(p.allowed_ips.size(), 2u);
    EXPECT_EQ(p.allowed_ips[0], prefix("10.0.0.2/32"));
    EXPECT_EQ(p.allowed_ips[1], prefix("fd00::/64"));
    const WgPeer& q = d.peers[1];
    EXPECT_EQ(q.public_key, b);
    EXPECT_FALSE(q.preshared_key);  // all-zero means none
    ASSERT_TRUE(q.endpoint);
    EXPECT_EQ(q.endpoint->str(), "[2001:db8::1]:7");
    EXPECT_TRUE(q.allowed_ips.empty());
    EXPECT_EQ(q.last_handshake_sec, 0);
}

TEST(UapiProtocol, EmptyDeviceHasNoKey) {
    CannedServer server({{"listen_port=0\nerrno=0\n\n"}});
    WgDevice d = UapiControl("wgtest", server.dir()).get_device();
    EXPECT_FALSE(d.private_key);
    EXPECT_EQ(d.listen_port, 0);
    EXPECT_TRUE(d.peers.empty());
}

TEST(UapiProtocol, MalformedRepliesNameTheLine) {
    std::string pk = "public_key=" + key_of(1).hex() + "\n";
    struct Case {
        std::string reply, expect;
    } cases[] = {
        {"private_key=zz" + kPriv.substr(2) + "\nerrno=0\n\n", "line 1 'private_key=zz"},
        {"private_key=abc\nerrno=0\n\n", "bad hex key"},
        {"listen_port=70000\nerrno=0\n\n", "line 1 'listen_port=70000': bad number"},
        {"listen_port=-1\nerrno=0\n\n", "bad number"},
        {"fwmark=12x\nerrno=0\n\n", "bad number"},
        {pk + "rx_bytes=\nerrno=0\n\n", "line 2 'rx_bytes=': bad number"},
        {pk + "persistent_keepalive_interval=65536\nerrno=0\n\n", "bad number"},
        {pk + "endpoint=nonsense\nerrno=0\n\n", "line 2 'endpoint=nonsense': bad endpoint"},
        {pk + "allowed_ip=10.0.0.0/33\nerrno=0\n\n", "bad allowed_ip"},
        {pk + "allowed_ip=10.0.0.1\nerrno=0\n\n", "bad allowed_ip"},
        {"listen_port\nerrno=0\n\n", "line 1 'listen_port': no '='"},
        {"endpoint=1.2.3.4:5\nerrno=0\n\n", "peer key before any public_key"},
        {pk + "listen_port=1\nerrno=0\n\n", "device key after a peer"},
        {"listen_port=1\n\n", "no errno line"},
        {"listen_port=1\nerrno=zero\n\n", "bad errno value"},
        {"errno=-22\n\n", "errno=-22 (Invalid argument)"},
        // Its magnitude was taken by negating an int64_t, undefined for this one.
        {"errno=-9223372036854775808\n\n", "UAPI get failed: errno=-9223372036854775808"},
        {"listen_port=1\n\nerrno=0\n\n", "data after the end of the reply"},
        {"listen_port=1\nerrno=0\n", "truncated"},
        {"listen_port=1\nerr", "truncated: connection closed after 17 bytes"},
        {"", "truncated: connection closed after 0 bytes"},
        {"errno=0\n\nextra", "data after the end of the reply"},
        {"\n", "no errno line"},
    };
    for (const Case& c : cases) {
        std::string err = get_error(c.reply);
        EXPECT_NE(err.find(c.expect), std::string::npos)
            << "reply: " << c.reply << "\nerror: " << err << "\nexpected: " << c.expect;
    }
}

// The parser alone, as a fuzz seed takes it.
WgDevice parse(std::string_view reply) {
    test::fuzz_seed("uapi_get_reply", reply);
    return parse_uapi_get_reply(reply);
}

TEST(UapiProtocol, ParserRejectsDataAfterErrno) {
    EXPECT_THROW(parse("errno=0\nlisten_port=1\n\n"), WgError);
    EXPECT_NO_THROW(parse("errno=0\n\n"));
}

TEST(UapiProtocol, MissingSocketNamesPath) {
    std::string dir = "/tmp/nbt-uapi-missing-" + std::to_string(::getpid());
    UapiControl ctl("nowhere", dir);
    try {
        ctl.get_device();
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "wireguard-go UAPI socket " + dir + "/nowhere.sock: No such file or directory");
        EXPECT_EQ(e.fault, WgFault::Gone);
    }
}

TEST(UapiProtocol, RefusedConnection) {
    // A bound socket nobody listens on refuses connections, like a dead daemon's.
    char tmpl[] = "/tmp/nbt-uapi-XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    std::string dir = tmpl;
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::string path = dir + "/dead.sock";
    std::strcpy(sun.sun_path, path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun), 0);
    std::string err;
    WgFault fault = WgFault::Rejected;
    try {
        UapiControl("dead", dir).get_device();
    } catch (const WgError& e) {
        err = e.what();
        fault = e.fault;
    }
    EXPECT_EQ(fault, WgFault::Gone);
    ::close(fd);
    std::filesystem::remove_all(dir);
    EXPECT_EQ(err, "wireguard-go UAPI socket " + path + ": Connection refused");
}

TEST(UapiProtocol, WedgedDaemonTimesOut) {
    CannedServer server({{"listen_port=1\n", true}});
    UapiControl ctl("wgtest", server.dir());
    ctl.set_timeout(std::chrono::milliseconds(200));
    auto start = std::chrono::steady_clock::now();
    try {
        ctl.get_device();
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_NE(std::string(e.what()).find("no complete reply within 200 ms"), std::string::npos)
            << e.what();
        EXPECT_EQ(e.fault, WgFault::NoAnswer);
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(UapiProtocol, SetSendsEveryField) {
    CannedServer server({{"errno=0\n\n"}});
    UapiControl ctl("wgtest", server.dir());
    DeviceUpdate u;
    u.private_key = key_of(0x44);
    u.listen_port = 51820;
    u.fwmark = 0;
    u.replace_peers = true;
    PeerUpdate gone;
    gone.public_key = key_of(1);
    gone.remove = true;
    PeerUpdate p;
    p.public_key = key_of(2);
    p.update_only = true;
    p.preshared_key = key_of(3);
    p.endpoint = endpoint("[fd00::1]:51820");
    p.persistent_keepalive = 0;
    p.replace_allowed_ips = true;
    p.allowed_ips = {prefix("10.1.0.0/16"), prefix("fd00:1::/64")};
    PeerUpdate plain;
    plain.public_key = key_of(4);
    plain.endpoint = endpoint("198.51.100.1:1");
    u.peers = {gone, p, plain};
    ctl.set_device(u);
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(server.requests()[0], "set=1\nprivate_key=" + key_of(0x44).hex() +
                                        "\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n"
                                        "public_key=" +
                                        key_of(1).hex() +
                                        "\nremove=true\n"
                                        "public_key=" +
                                        key_of(2).hex() +
                                        "\nupdate_only=true\npreshared_key=" + key_of(3).hex() +
                                        "\nendpoint=[fd00::1]:51820\n"
                                        "persistent_keepalive_interval=0\n"
                                        "replace_allowed_ips=true\n"
                                        "allowed_ip=10.1.0.0/16\nallowed_ip=fd00:1::/64\n"
                                        "public_key=" +
                                        key_of(4).hex() + "\nendpoint=198.51.100.1:1\n\n");
}

TEST(UapiProtocol, LargeUpdatesAreChunkedAtPeerBoundaries) {
    CannedServer server({{"errno=0\n\n"}, {"errno=0\n\n"}, {"errno=0\n\n"}});
    UapiControl ctl("wgtest", server.dir());
    ctl.set_max_peers_per_request(2);
    DeviceUpdate u;
    u.listen_port = 1;
    u.replace_peers = true;
    for (uint8_t i = 1; i <= 5; ++i) {
        PeerUpdate p;
        p.public_key = key_of(i);
        p.allowed_ips = {prefix(("10.0.0." + std::to_string(i) + "/32").c_str())};
        u.peers.push_back(p);
    }
    ctl.set_device(u);
    auto reqs = server.requests();
    ASSERT_EQ(reqs.size(), 3u);
    EXPECT_EQ(reqs[0], "set=1\nlisten_port=1\nreplace_peers=true\npublic_key=" + key_of(1).hex() +
                           "\nallowed_ip=10.0.0.1/32\npublic_key=" + key_of(2).hex() +
                           "\nallowed_ip=10.0.0.2/32\n\n");
    EXPECT_EQ(reqs[1], "set=1\npublic_key=" + key_of(3).hex() +
                           "\nallowed_ip=10.0.0.3/32\npublic_key=" + key_of(4).hex() +
                           "\nallowed_ip=10.0.0.4/32\n\n");
    EXPECT_EQ(reqs[2], "set=1\npublic_key=" + key_of(5).hex() + "\nallowed_ip=10.0.0.5/32\n\n");
}

TEST(UapiProtocol, PeerWithManyAllowedIpsContinuesInNextRequest) {
    DeviceUpdate u;
    PeerUpdate p;
    p.public_key = key_of(9);
    p.replace_allowed_ips = true;
    for (int i = 0; i < 10; ++i)
        p.allowed_ips.push_back(prefix(("10.9.0." + std::to_string(i) + "/32").c_str()));
    u.peers = {p};
    // One peer per request allows 4 allowed IPs per request.
    auto reqs = build_uapi_set_requests(u, 1);
    ASSERT_EQ(reqs.size(), 3u);
    std::string key_line = "public_key=" + key_of(9).hex() + "\n";
    EXPECT_EQ(reqs[0].rfind("set=1\n" + key_line + "replace_allowed_ips=true\n", 0), 0u);
    for (size_t i = 1; i < reqs.size(); ++i)
        EXPECT_EQ(reqs[i].rfind("set=1\n" + key_line + "update_only=true\nallowed_ip=", 0), 0u)
            << reqs[i];
    std::string all;
    for (const auto& r : reqs) {
        EXPECT_TRUE(r.ends_with("\n\n"));
        all += r;
    }
    for (int i = 0; i < 10; ++i)
        EXPECT_NE(all.find("allowed_ip=10.9.0." + std::to_string(i) + "/32\n"), std::string::npos);
    EXPECT_EQ(all.find("replace_allowed_ips"), all.rfind("replace_allowed_ips"));
}

TEST(UapiProtocol, SetErrorStopsAndSaysWhichRequest) {
    CannedServer server({{"errno=0\n\n"}, {"errno=-98\n\n"}, {"errno=0\n\n"}});
    UapiControl ctl("wgtest", server.dir());
    ctl.set_max_peers_per_request(1);
    DeviceUpdate u;
    for (uint8_t i = 1; i <= 3; ++i) u.peers.push_back(PeerUpdate{.public_key = key_of(i)});
    try {
        ctl.set_device(u);
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "wireguard-go wgtest: UAPI set failed: errno=-98 (Address already in use) "
                  "(request 2 of 3, earlier ones applied)");
    }
    EXPECT_EQ(server.requests().size(), 2u);
}

TEST(UapiProtocol, MalformedSetReply) {
    for (const char* reply : {"errno=abc\n\n", "listen_port=1\nerrno=0\n\n", "\n"}) {
        CannedServer server({{reply}});
        try {
            UapiControl("wgtest", server.dir()).set_device(DeviceUpdate{});
            ADD_FAILURE() << "expected WgError for " << reply;
        } catch (const WgError& e) {
            EXPECT_NE(std::string(e.what()).find("malformed UAPI set reply"), std::string::npos)
                << e.what();
        }
    }
}

// A request that timed out is handed over, not closed: wireguard-go would apply it later
// all the same, so whoever takes it drives it to its answer.
TEST(UapiProtocol, TimedOutRequestIsHandedOverAndFinishes) {
    CannedServer server({{"errno=0\n\n", false, {}, std::chrono::milliseconds(300)}});
    UapiControl ctl("wgtest", server.dir());
    ctl.set_timeout(std::chrono::milliseconds(50));
    std::unique_ptr<UapiExchange> parked;
    ctl.set_parking([&](std::unique_ptr<UapiExchange> ex) { parked = std::move(ex); });
    DeviceUpdate u;
    u.listen_port = 1;
    try {
        ctl.set_device(u);
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(e.fault, WgFault::NoAnswer);
        EXPECT_NE(std::string(e.what()).find("no complete reply within 50 ms"), std::string::npos)
            << e.what();
    }
    ASSERT_TRUE(parked);
    EXPECT_TRUE(parked->sent_all());
    EXPECT_EQ(parked->run(std::chrono::seconds(3)), UapiExchange::State::Done);
    EXPECT_EQ(parked->reply(), "errno=0\n\n");
    EXPECT_EQ(uapi_set_reply_errno(parked->reply()), 0);
    EXPECT_EQ(server.requests(), std::vector<std::string>{"set=1\nlisten_port=1\n\n"});
}

// A daemon that stopped reading gets the rest of a big request once it reads again: a
// set cut off midway would be applied up to where it ends (a remove without its re-add).
TEST(UapiProtocol, RequestCutOffBySendTimeoutIsSentInFullLater) {
    CannedServer server({{"errno=0\n\n", false, std::chrono::milliseconds(300), {}}});
    UapiControl ctl("wgtest", server.dir());
    ctl.set_timeout(std::chrono::milliseconds(50));
    ctl.set_max_peers_per_request(100000);
    std::unique_ptr<UapiExchange> parked;
    ctl.set_parking([&](std::unique_ptr<UapiExchange> ex) { parked = std::move(ex); });
    DeviceUpdate u;
    for (unsigned i = 0; i < 20000; ++i) {
        WgKey k;
        k.bytes.fill(static_cast<uint8_t>(i));
        k.bytes[0] = static_cast<uint8_t>(i >> 8);
        u.peers.push_back(PeerUpdate{.public_key = k, .remove = true});
    }
    const std::string expected = build_uapi_set_requests(u, 100000).at(0);
    ASSERT_GT(expected.size(), 1u << 20);  // far more than a socket buffer holds
    try {
        ctl.set_device(u);
        FAIL() << "expected WgError";
    } catch (const WgError& e) {
        EXPECT_EQ(e.fault, WgFault::NoAnswer);
        EXPECT_NE(std::string(e.what()).find("daemon stopped reading for 50 ms"), std::string::npos)
            << e.what();
    }
    ASSERT_TRUE(parked);
    EXPECT_FALSE(parked->sent_all());
    EXPECT_EQ(parked->run(std::chrono::seconds(5)), UapiExchange::State::Done);
    ASSERT_EQ(server.requests().size(), 1u);
    EXPECT_EQ(server.requests()[0], expected);
}

}  // namespace
}  // namespace nb
