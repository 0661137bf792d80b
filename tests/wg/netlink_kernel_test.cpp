// NetlinkControl against real kernel WireGuard in private network namespaces; `wg show`
// is the independent check. The host kernel here has no WireGuard module, so on the host
// these tests skip; they run for real in the qemu kernel matrix (vagrant/), which boots
// Debian kernels that have it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <sstream>
#include <thread>

#include "agent/wg/netlink_control.hpp"
#include "base/net/rtnl.hpp"
#include "tests/support/privileged.hpp"
#include "tests/wg/netns_util.hpp"
#include "tests/wg/wgnl_util.hpp"

namespace nb {
namespace {

using test::NetNs;
using test::nth_key;
using test::nth_peer;

// A Curve25519 private key as the kernel stores it (clamped), so it reads back unchanged.
WgKey private_key(uint32_t n) {
    WgKey k = nth_key(n, 0x3c);
    k.bytes[0] &= 248;
    k.bytes[31] = static_cast<uint8_t>((k.bytes[31] & 127) | 64);
    return k;
}

std::string public_key_b64(const WgKey& priv) {
    auto r = test::run_cmd("echo " + priv.base64() + " | wg pubkey");
    EXPECT_EQ(r.status, 0) << r.out;
    while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
    return r.out;
}

std::vector<IpPrefix> sorted(std::vector<IpPrefix> v) {
    std::sort(v.begin(), v.end());
    return v;
}

std::map<WgKey, WgPeer> by_key(const WgDevice& d) {
    std::map<WgKey, WgPeer> m;
    for (const WgPeer& p : d.peers) EXPECT_TRUE(m.emplace(p.public_key, p).second);
    return m;
}

// Compares what the kernel reports with the updates that created the peers.
void expect_installed(const WgDevice& dev, const std::vector<PeerUpdate>& want) {
    ASSERT_EQ(dev.peers.size(), want.size());
    auto got = by_key(dev);
    for (const PeerUpdate& w : want) {
        auto it = got.find(w.public_key);
        ASSERT_NE(it, got.end()) << w.public_key.base64();
        const WgPeer& g = it->second;
        ASSERT_EQ(g.endpoint, w.endpoint) << w.public_key.base64();
        ASSERT_EQ(sorted(g.allowed_ips), sorted(w.allowed_ips)) << w.public_key.base64();
        ASSERT_EQ(g.preshared_key, w.preshared_key) << w.public_key.base64();
        ASSERT_EQ(g.persistent_keepalive, w.persistent_keepalive.value_or(0));
    }
}

class KernelWireGuardTest : public ::testing::Test {
  protected:
    void SetUp() override {
        NB_REQUIRE_ROOT();
        ns_ = std::make_unique<NetNs>("nl");
        std::string absent;
        ns_->run_inside([&] {
            try {
                link_add_wireguard("wg0");
            } catch (const NetlinkError& e) {
                if (e.error_code != EOPNOTSUPP && e.error_code != ENOENT) throw;
                absent = e.what();
            }
        });
        if (!absent.empty()) {
            // Without the module the probe and the constructor must say so.
            EXPECT_FALSE(kernel_wireguard_available());
            try {
                NetlinkControl c("wg0");
                ADD_FAILURE() << "NetlinkControl constructed without kernel WireGuard";
            } catch (const WgError& e) {
                EXPECT_STREQ(e.what(),
                             "kernel WireGuard is not available (no 'wireguard' generic netlink "
                             "family)");
            }
            // Not NB_SKIP_UNLESS: the missing module is a property of this host's kernel,
            // not a missing privilege, so CI=true must not turn it into a failure. The
            // qemu kernel matrix is where these tests run.
            GTEST_SKIP() << "kernel has no WireGuard module (runs in the qemu matrix): " << absent;
        }
        EXPECT_TRUE(kernel_wireguard_available());
        ns_->run_inside([&] { ctl_ = std::make_unique<NetlinkControl>("wg0"); });
    }

    std::vector<std::string> wg_dump_lines() {
        auto r = ns_->exec("wg show wg0 dump");
        EXPECT_EQ(r.status, 0) << r.out;
        std::vector<std::string> lines;
        std::istringstream in(r.out);
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        return lines;
    }

    std::unique_ptr<NetNs> ns_;
    std::unique_ptr<NetlinkControl> ctl_;
};

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string f; std::getline(in, f, sep);) out.push_back(f);
    return out;
}

TEST_F(KernelWireGuardTest, DeviceSettings) {
    EXPECT_EQ(ctl_->backend(), WgBackend::Kernel);
    DeviceUpdate u;
    u.private_key = private_key(1);
    u.listen_port = 51820;
    u.fwmark = 0x1234;
    u.replace_peers = true;
    for (uint32_t i = 0; i < 100; ++i) u.peers.push_back(nth_peer(i));
    ctl_->set_device(u);

    WgDevice d = ctl_->get_device();
    ASSERT_TRUE(d.private_key);
    EXPECT_EQ(*d.private_key, *u.private_key);
    EXPECT_EQ(d.listen_port, 51820);
    EXPECT_EQ(d.fwmark, 0x1234u);
    expect_installed(d, u.peers);

    auto head = split(wg_dump_lines().at(0), '\t');
    ASSERT_GE(head.size(), 4u);
    EXPECT_EQ(head[0], u.private_key->base64());
    EXPECT_EQ(head[1], public_key_b64(*u.private_key));
    EXPECT_EQ(head[2], "51820");
    EXPECT_EQ(head[3], "0x1234");

    // Only what an update names changes; replacing the peers leaves exactly the new set.
    DeviceUpdate next;
    next.private_key = private_key(2);
    next.replace_peers = true;
    next.peers = {nth_peer(20000), nth_peer(20001)};
    ctl_->set_device(next);
    d = ctl_->get_device();
    EXPECT_EQ(*d.private_key, *next.private_key);
    EXPECT_EQ(d.listen_port, 51820);
    EXPECT_EQ(d.fwmark, 0x1234u);
    expect_installed(d, next.peers);
}

// The large tests run without a device private key: with one, the kernel precomputes a
// Curve25519 shared secret for every new peer, which under qemu's emulation costs ~6 ms
// a peer and would dominate the matrix; the netlink path is the same either way.
TEST_F(KernelWireGuardTest, TenThousandPeers) {
    DeviceUpdate u;
    u.replace_peers = true;
    for (uint32_t i = 0; i < 10000; ++i) u.peers.push_back(nth_peer(i));
    ctl_->set_device(u);
    expect_installed(ctl_->get_device(), u.peers);

    // Independently, through wireguard-tools.
    auto lines = wg_dump_lines();
    ASSERT_EQ(lines.size(), 10001u);
    std::map<std::string, const PeerUpdate*> want;
    for (const PeerUpdate& p : u.peers) want[p.public_key.base64()] = &p;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        auto f = split(lines[i], '\t');
        ASSERT_GE(f.size(), 8u) << lines[i];
        auto it = want.find(f[0]);
        ASSERT_NE(it, want.end()) << lines[i];
        const PeerUpdate& p = *it->second;
        EXPECT_EQ(f[1], p.preshared_key ? p.preshared_key->base64() : "(none)") << lines[i];
        EXPECT_EQ(f[2], p.endpoint->str()) << lines[i];
        std::vector<std::string> ips;
        for (const IpPrefix& ip : p.allowed_ips) ips.push_back(ip.str());
        auto got_ips = split(f[3], ',');
        std::sort(ips.begin(), ips.end());
        std::sort(got_ips.begin(), got_ips.end());
        EXPECT_EQ(got_ips, ips) << lines[i];
    }
}

// WireGuard flags a dump NLM_F_DUMP_INTR when the device changed while it ran; such a
// dump may hold peers from before and after the change. A writer keeps swapping one peer
// for another in single requests (the front-most original out, a new one onto the tail,
// where a running dump still finds it), so every consistent view has exactly 10,000
// peers and an inconsistent one has 10,001. get_device must return only consistent
// views, or name the cause when every attempt was interrupted.
TEST_F(KernelWireGuardTest, DumpsInterruptedByChangesAreRetried) {
    constexpr uint32_t kPeers = 10000;
    DeviceUpdate u;
    u.replace_peers = true;
    for (uint32_t i = 0; i < kPeers; ++i) u.peers.push_back(nth_peer(i, false));
    ctl_->set_device(u);
    std::unique_ptr<NetlinkControl> writer;
    ns_->run_inside([&] { writer = std::make_unique<NetlinkControl>("wg0"); });

    std::atomic<bool> stop{false};
    std::atomic<uint32_t> swaps{0};
    std::exception_ptr writer_failure;
    std::thread t([&] {
        try {
            for (uint32_t i = 0; !stop; ++i) {
                DeviceUpdate swap;
                PeerUpdate out;
                out.public_key = nth_key(i);
                out.remove = true;
                swap.peers = {out, nth_peer(kPeers + i, false)};
                writer->set_device(swap);
                swaps = i + 1;
                // Some dumps must get through whole between changes.
                std::this_thread::sleep_for(std::chrono::milliseconds(i % 2 ? 20 : 150));
            }
        } catch (...) {
            writer_failure = std::current_exception();
        }
    });
    int whole = 0, gave_up = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline &&
           (whole < 20 || ctl_->interrupted_dumps() < 3)) {
        try {
            WgDevice d = ctl_->get_device();
            ++whole;
            EXPECT_EQ(d.peers.size(), kPeers) << "an inconsistent dump was returned";
            if (d.peers.size() != kPeers) break;
        } catch (const WgError& e) {
            ++gave_up;
            EXPECT_NE(std::string(e.what()).find("NLM_F_DUMP_INTR"), std::string::npos) << e.what();
        }
    }
    stop = true;
    t.join();
    if (writer_failure) std::rethrow_exception(writer_failure);
    std::printf(
        "%d whole dumps, %d given up after every attempt was interrupted, %llu "
        "interrupted dumps discarded, %u swaps\n",
        whole, gave_up, static_cast<unsigned long long>(ctl_->interrupted_dumps()), swaps.load());
    EXPECT_GE(whole, 1);
    EXPECT_GE(ctl_->interrupted_dumps(), 1u) << "no dump was interrupted: nothing was tested";
    expect_installed(ctl_->get_device(), [&] {
        std::vector<PeerUpdate> now;
        for (uint32_t i = swaps; i < kPeers; ++i) now.push_back(nth_peer(i, false));
        for (uint32_t i = 0; i < swaps; ++i) now.push_back(nth_peer(kPeers + i, false));
        return now;
    }());
}

TEST_F(KernelWireGuardTest, HundredThousandPeers) {
    DeviceUpdate u;
    u.listen_port = 51821;
    for (uint32_t i = 0; i < 100000; ++i) u.peers.push_back(nth_peer(i));
    ctl_->set_device(u);
    WgDevice d = ctl_->get_device();
    EXPECT_EQ(d.listen_port, 51821);
    expect_installed(d, u.peers);
    EXPECT_EQ(wg_dump_lines().size(), 100001u);
}

TEST_F(KernelWireGuardTest, RemoveAndReaddClearsEndpointKeepsAllowedIps) {
    DeviceUpdate u;
    for (uint32_t i = 0; i < 3; ++i) u.peers.push_back(nth_peer(i));
    u.peers[1].allowed_ips.push_back(*IpPrefix::parse("10.200.0.0/16"));
    ctl_->set_device(u);
    WgDevice before = ctl_->get_device();
    auto peer = by_key(before).at(u.peers[1].public_key);
    ASSERT_TRUE(peer.endpoint);

    DeviceUpdate idle;
    idle.peers = {remove_peer_op(peer.public_key), readd_peer_op(peer)};
    ctl_->set_device(idle);

    auto after = by_key(ctl_->get_device());
    ASSERT_EQ(after.size(), 3u);
    const WgPeer& p = after.at(peer.public_key);
    EXPECT_FALSE(p.endpoint);
    EXPECT_EQ(sorted(p.allowed_ips), sorted(peer.allowed_ips));
    EXPECT_EQ(p.preshared_key, peer.preshared_key);
    EXPECT_EQ(p.persistent_keepalive, 0);
    EXPECT_EQ(after.at(u.peers[0].public_key).endpoint, u.peers[0].endpoint);
    EXPECT_EQ(after.at(u.peers[2].public_key).endpoint, u.peers[2].endpoint);
}

TEST_F(KernelWireGuardTest, UpdateOnlySkipsUnknownPeersAndUpdatesKnownOnes) {
    DeviceUpdate u;
    u.peers = {nth_peer(1)};
    ctl_->set_device(u);

    DeviceUpdate upd;
    PeerUpdate unknown = nth_peer(2);
    unknown.update_only = true;
    PeerUpdate known;
    known.public_key = u.peers[0].public_key;
    known.update_only = true;
    known.endpoint = SockAddr::parse_numeric("192.0.2.200:4000");
    upd.peers = {unknown, known};
    ctl_->set_device(upd);

    auto peers = by_key(ctl_->get_device());
    ASSERT_EQ(peers.size(), 1u);
    EXPECT_EQ(peers.at(known.public_key).endpoint, known.endpoint);
    EXPECT_EQ(sorted(peers.at(known.public_key).allowed_ips), sorted(u.peers[0].allowed_ips));
}

TEST_F(KernelWireGuardTest, OnePeerWithThousandsOfAllowedIpsSpansMessagesBothWays) {
    PeerUpdate p = nth_peer(3);
    p.allowed_ips.clear();
    for (uint32_t i = 0; i < 5000; ++i) {
        IpPrefix ip = *IpPrefix::parse("10.128.0.0/32");
        ip.addr.bytes[2] = static_cast<uint8_t>(i >> 8);
        ip.addr.bytes[3] = static_cast<uint8_t>(i);
        p.allowed_ips.push_back(ip);
    }
    p.replace_allowed_ips = true;
    DeviceUpdate u;
    u.peers = {p, nth_peer(4)};
    ctl_->set_max_message_size(kWgNetlinkMinMessageSize);  // many continuation messages
    ctl_->set_device(u);
    // The dump splits this peer's allowed IPs over several messages too.
    expect_installed(ctl_->get_device(), u.peers);
}

TEST_F(KernelWireGuardTest, HandshakeStatistics) {
    // wg1 is created here and moved to a second namespace: its UDP socket stays in the
    // namespace it was created in, so both ends talk over this namespace's loopback while
    // the tunnel's inner packets cross namespaces.
    NetNs other("nl2");
    ASSERT_EQ(ns_->ip("link set lo up").status, 0);
    ns_->run_inside([] { link_add_wireguard("wg1"); });
    WgKey k0 = private_key(10), k1 = private_key(11);
    auto pub0 = WgKey::from_base64(public_key_b64(k0));
    auto pub1 = WgKey::from_base64(public_key_b64(k1));
    ASSERT_TRUE(pub0 && pub1);

    DeviceUpdate d0;
    d0.private_key = k0;
    d0.listen_port = 52001;
    PeerUpdate to1;
    to1.public_key = *pub1;
    to1.endpoint = SockAddr::parse_numeric("127.0.0.1:52002");
    to1.allowed_ips = {*IpPrefix::parse("10.77.0.2/32")};
    d0.peers = {to1};
    ctl_->set_device(d0);

    DeviceUpdate d1;
    d1.private_key = k1;
    d1.listen_port = 52002;
    PeerUpdate to0;
    to0.public_key = *pub0;
    to0.endpoint = SockAddr::parse_numeric("127.0.0.1:52001");
    to0.allowed_ips = {*IpPrefix::parse("10.77.0.1/32")};
    d1.peers = {to0};
    ns_->run_inside([&] { NetlinkControl("wg1").set_device(d1); });

    ASSERT_EQ(ns_->ip("link set wg1 netns " + other.name()).status, 0);
    for (const auto& [ns, dev, addr, peer] :
         {std::tuple{ns_.get(), "wg0", "10.77.0.1", "10.77.0.2"},
          std::tuple{&other, "wg1", "10.77.0.2", "10.77.0.1"}}) {
        ASSERT_EQ(ns->ip(std::string("addr add ") + addr + "/32 dev " + dev).status, 0);
        ASSERT_EQ(ns->ip(std::string("link set ") + dev + " up").status, 0);
        ASSERT_EQ(ns->ip(std::string("route add ") + peer + "/32 dev " + dev).status, 0);
    }
    auto ping = ns_->exec("ping -c 2 -W 10 10.77.0.2");
    ASSERT_EQ(ping.status, 0) << ping.out;

    WgDevice d = ctl_->get_device();
    ASSERT_EQ(d.peers.size(), 1u);
    const WgPeer& p = d.peers[0];
    EXPECT_GT(p.rx_bytes, 0u);
    EXPECT_GT(p.tx_bytes, 0u);
    EXPECT_GT(p.last_handshake_sec, 0);
    EXPECT_LE(p.last_handshake_sec, static_cast<int64_t>(std::time(nullptr)) + 1);
    EXPECT_EQ(p.endpoint, to1.endpoint);
}

TEST_F(KernelWireGuardTest, ErrorsNameTheDevice) {
    std::unique_ptr<NetlinkControl> missing, loopback;
    ns_->run_inside([&] {
        missing = std::make_unique<NetlinkControl>("nbnosuchwg");
        loopback = std::make_unique<NetlinkControl>("lo");
    });
    try {
        missing->get_device();
        FAIL() << "no error";
    } catch (const WgError& e) {
        EXPECT_NE(std::string(e.what()).find("reading device nbnosuchwg: No such device"),
                  std::string::npos)
            << e.what();
    }
    try {
        loopback->set_device(DeviceUpdate{});
        FAIL() << "no error";
    } catch (const WgError& e) {
        EXPECT_NE(std::string(e.what()).find("not a kernel WireGuard interface"), std::string::npos)
            << e.what();
    }
    // A failure in a batched update names the batch.
    DeviceUpdate big;
    for (uint32_t i = 0; i < 1000; ++i) big.peers.push_back(nth_peer(i));
    try {
        loopback->set_device(big);
        FAIL() << "no error";
    } catch (const WgError& e) {
        EXPECT_NE(std::string(e.what()).find("setting device lo (batch 1 of "), std::string::npos)
            << e.what();
    }
    // The socket recovers after a failed exchange.
    EXPECT_TRUE(ctl_->get_device().peers.empty());
    // A replaced socket is opened in the control's namespace, not the caller's: this
    // thread is in the host namespace, which has no wg0.
    ctl_->set_timeout(std::chrono::milliseconds(5000));
    EXPECT_TRUE(ctl_->get_device().peers.empty());
}

}  // namespace
}  // namespace nb
