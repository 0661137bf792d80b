// UapiControl and start_wireguard_go against a real wireguard-go in a private network
// namespace; `wg show` is the independent check.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <thread>

#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/net/rtnl.hpp"
#include "tests/support/privileged.hpp"
#include "tests/wg/netns_util.hpp"

namespace nb {
namespace {

using test::NetNs;

std::string skip_reason() {
    if (::geteuid() != 0) return "needs root";
    if (!wireguard_go_available()) return "wireguard-go not installed";
    return "";
}

WgKey random_key(std::mt19937_64& rng) {
    WgKey k;
    for (auto& b : k.bytes) b = static_cast<uint8_t>(rng());
    // A valid Curve25519 private key (clamped), so it reads back unchanged.
    k.bytes[0] &= 248;
    k.bytes[31] = static_cast<uint8_t>((k.bytes[31] & 127) | 64);
    return k;
}

IpPrefix v4_host(unsigned i) {
    IpPrefix p;
    p.addr.family = AF_INET;
    p.addr.bytes[0] = 10;
    p.addr.bytes[1] = 200;
    p.addr.bytes[2] = static_cast<uint8_t>(i >> 8);
    p.addr.bytes[3] = static_cast<uint8_t>(i);
    p.len = 32;
    return p;
}

IpPrefix v6_net(unsigned i) {
    IpPrefix p;
    p.addr.family = AF_INET6;
    p.addr.bytes[0] = 0xfd;
    p.addr.bytes[1] = 0x0a;
    p.addr.bytes[6] = static_cast<uint8_t>(i >> 8);
    p.addr.bytes[7] = static_cast<uint8_t>(i);
    p.len = 64;
    return p;
}

std::vector<IpPrefix> sorted(std::vector<IpPrefix> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

class WireguardGoTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NB_SKIP_UNLESS(skip_reason());
        ns_ = std::make_unique<NetNs>("uapi");
        ns_->run_inside([&] { start_wireguard_go(ifname_); });
        started_ = true;
    }
    void TearDown() override {
        if (!started_) return;
        // wireguard-go exits when its tun device goes away, removing its socket.
        ns_->ip("link del " + ifname_);
        for (int i = 0; i < 100 && uapi_socket_exists(ifname_); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        EXPECT_FALSE(uapi_socket_exists(ifname_)) << "wireguard-go did not exit";
    }

    std::unique_ptr<NetNs> ns_;
    // Unique across namespaces: the socket lives in the shared /var/run/wireguard.
    const std::string ifname_ = "nbwg" + std::to_string(::getpid());
    bool started_ = false;
};

TEST_F(WireguardGoTest, StartedDeviceIsATunWithSocket) {
    EXPECT_TRUE(uapi_socket_exists(ifname_));
    ns_->run_inside([&] { EXPECT_EQ(link_kind(ifname_), "tun"); });
    // Not visible outside the namespace.
    EXPECT_FALSE(link_index(ifname_));
    UapiControl ctl(ifname_);
    EXPECT_EQ(ctl.socket_path(), "/var/run/wireguard/" + ifname_ + ".sock");
    WgDevice d = ctl.get_device();
    EXPECT_FALSE(d.private_key);
    EXPECT_TRUE(d.peers.empty());
    // A second daemon for the same interface must fail with its own explanation.
    ns_->run_inside([&] {
        try {
            start_wireguard_go(ifname_);
            ADD_FAILURE() << "second wireguard-go on the same interface started";
        } catch (const WgError& e) {
            EXPECT_NE(std::string(e.what()).find("exited with status"), std::string::npos)
                << e.what();
        }
    });
}

TEST_F(WireguardGoTest, ThousandPeersRoundTrip) {
    std::mt19937_64 rng(12345);
    UapiControl ctl(ifname_);
    // Exercise the chunking against the real daemon: 1000 peers in 4 transactions.
    ctl.set_max_peers_per_request(300);

    DeviceUpdate u;
    u.private_key = random_key(rng);
    u.listen_port = 0;  // device is down: no socket is bound either way
    u.fwmark = 0x1234;
    u.replace_peers = true;
    std::map<WgKey, PeerUpdate> want;
    for (unsigned i = 0; i < 1000; ++i) {
        PeerUpdate p;
        p.public_key = random_key(rng);
        if (i % 3 == 0) p.preshared_key = random_key(rng);
        IpAddr lo;
        if (i % 2 == 0) {
            lo = *IpAddr::parse("127.0.0.1");
        } else {
            lo = *IpAddr::parse("::1");
        }
        p.endpoint = SockAddr::from(lo, static_cast<uint16_t>(20000 + i));
        if (i % 5 == 0) p.persistent_keepalive = static_cast<uint16_t>(i % 60 + 1);
        p.allowed_ips = {v4_host(i), v6_net(i)};
        want[p.public_key] = p;
        u.peers.push_back(p);
    }
    ctl.set_device(u);

    WgDevice d = ctl.get_device();
    ASSERT_TRUE(d.private_key);
    EXPECT_EQ(*d.private_key, *u.private_key);
    EXPECT_EQ(d.fwmark, 0x1234u);
    ASSERT_EQ(d.peers.size(), 1000u);
    for (const WgPeer& got : d.peers) {
        auto it = want.find(got.public_key);
        ASSERT_NE(it, want.end()) << "unexpected peer " << got.public_key.base64();
        const PeerUpdate& w = it->second;
        EXPECT_EQ(got.preshared_key, w.preshared_key);
        ASSERT_TRUE(got.endpoint);
        EXPECT_EQ(got.endpoint->str(), w.endpoint->str());
        EXPECT_EQ(got.persistent_keepalive, w.persistent_keepalive.value_or(0));
        EXPECT_EQ(sorted(got.allowed_ips), sorted(w.allowed_ips));
        EXPECT_EQ(got.rx_bytes, 0u);
        EXPECT_EQ(got.last_handshake_sec, 0);
    }

    // Independent check with wg(8).
    auto priv = ns_->exec("wg show " + ifname_ + " private-key");
    EXPECT_EQ(trim(priv.out), u.private_key->base64());
    auto peers = ns_->exec("wg show " + ifname_ + " peers");
    EXPECT_EQ(std::count(peers.out.begin(), peers.out.end(), '\n'), 1000);
    const PeerUpdate& first = u.peers[1];
    auto eps = ns_->exec("wg show " + ifname_ + " endpoints");
    EXPECT_NE(eps.out.find(first.public_key.base64() + "\t" + first.endpoint->str()),
              std::string::npos);

    // Clearing an endpoint: remove and re-add in one update keeps the allowed IPs.
    const WgPeer* target = nullptr;
    for (const WgPeer& p : d.peers)
        if (p.public_key == first.public_key) target = &p;
    ASSERT_TRUE(target);
    DeviceUpdate clear;
    clear.peers = {remove_peer_op(target->public_key), readd_peer_op(*target)};
    ctl.set_device(clear);
    WgDevice after = ctl.get_device();
    ASSERT_EQ(after.peers.size(), 1000u);
    for (const WgPeer& p : after.peers) {
        if (p.public_key != first.public_key) continue;
        EXPECT_FALSE(p.endpoint);
        EXPECT_EQ(sorted(p.allowed_ips), sorted(first.allowed_ips));
        EXPECT_EQ(p.preshared_key, first.preshared_key);
    }
    auto eps2 = ns_->exec("wg show " + ifname_ + " endpoints");
    EXPECT_NE(eps2.out.find(first.public_key.base64() + "\t(none)"), std::string::npos)
        << eps2.out.substr(0, 500);
}

TEST_F(WireguardGoTest, UpdateOnlyForUnknownPeerIsSkipped) {
    std::mt19937_64 rng(777);
    UapiControl ctl(ifname_);
    PeerUpdate known;
    known.public_key = random_key(rng);
    known.allowed_ips = {v4_host(1)};
    ctl.set_device(DeviceUpdate{.peers = {known}});

    PeerUpdate ghost;
    ghost.public_key = random_key(rng);
    ghost.update_only = true;
    ghost.endpoint = SockAddr::parse_numeric("127.0.0.1:9");
    ghost.allowed_ips = {v4_host(2)};
    ctl.set_device(DeviceUpdate{.peers = {ghost}});

    WgDevice d = ctl.get_device();
    ASSERT_EQ(d.peers.size(), 1u);
    EXPECT_EQ(d.peers[0].public_key, known.public_key);
    EXPECT_EQ(d.peers[0].allowed_ips, known.allowed_ips);
}

TEST_F(WireguardGoTest, PortInUseIsReportedWithErrno) {
    // wireguard-go binds only while up; occupy the port inside the namespace first.
    int port = 0;
    int fd = -1;
    ns_->run_inside([&] {
        link_set_up(ifname_);
        fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in sin{};
        sin.sin_family = AF_INET;
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin), 0);
        socklen_t len = sizeof sin;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
        port = ntohs(sin.sin_port);
    });
    ASSERT_GT(port, 0);
    UapiControl ctl(ifname_);
    // Wait until wireguard-go has seen the link come up and bound its own port.
    for (int i = 0; i < 100 && ctl.get_device().listen_port == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_NE(ctl.get_device().listen_port, 0) << "wireguard-go never bound a port";

    // Many peers after the failing line: the daemon answers and hangs up mid-request.
    std::mt19937_64 rng(99);
    DeviceUpdate u;
    u.listen_port = static_cast<uint16_t>(port);
    for (unsigned i = 0; i < 2000; ++i) {
        PeerUpdate p;
        p.public_key = random_key(rng);
        p.allowed_ips = {v4_host(i), v6_net(i)};
        u.peers.push_back(p);
    }
    try {
        ctl.set_device(u);
        ADD_FAILURE() << "setting a port in use succeeded";
    } catch (const WgError& e) {
        EXPECT_NE(std::string(e.what()).find("errno=-98 (Address already in use)"),
                  std::string::npos)
            << e.what();
    }
    ::close(fd);
    // The daemon survived and still answers.
    EXPECT_NO_THROW(ctl.get_device());
}

}  // namespace
}  // namespace nb
