// WireGuard generic netlink encoding and decoding without a kernel: set messages for
// 100k peers (size limit, batching, continuation semantics) checked by an independent
// decoder, and canned WG_CMD_GET_DEVICE dumps, well formed and malformed.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "agent/wg/netlink_control.hpp"
#include "tests/support/fuzz_seed.hpp"
#include "tests/support/net_values.hpp"
#include "tests/wg/wgnl_util.hpp"

namespace nb {
namespace {

using test::nth_key;
using test::nth_peer;
using test::SentMessage;
using test::SentPeer;
using test::SetDecoder;

constexpr uint16_t kFamily = 0x1d;
constexpr uint32_t kSeq = 4242;
constexpr uint32_t kPort = 777;

using test::endpoint;
using test::prefix;

std::vector<SentMessage> decode_all(const std::vector<std::vector<uint8_t>>& msgs) {
    std::vector<SentMessage> out;
    for (const auto& m : msgs) out.push_back(SetDecoder::decode(m, kFamily));
    return out;
}

// --- Set ---

TEST(NetlinkSetEncoding, HundredThousandPeersStayWithinTheLimitAndDecodeBack) {
    DeviceUpdate u;
    u.private_key = nth_key(1, 0x99);
    u.listen_port = 51820;
    u.fwmark = 0x51;
    u.replace_peers = true;
    for (uint32_t i = 0; i < 100000; ++i) u.peers.push_back(nth_peer(i));

    for (std::size_t limit : {kWgNetlinkDefaultMessageSize, kWgNetlinkMinMessageSize}) {
        SCOPED_TRACE("limit " + std::to_string(limit));
        auto msgs = build_set_device_messages("wg0", u, kFamily, kSeq, limit);
        ASSERT_GT(msgs.size(), 1u);
        auto sent = decode_all(msgs);
        std::vector<PeerUpdate> got;
        for (std::size_t i = 0; i < sent.size(); ++i) {
            const SentMessage& m = sent[i];
            ASSERT_LE(msgs[i].size(), limit);
            EXPECT_EQ(m.seq, kSeq + i);
            EXPECT_EQ(m.flags, NLM_F_REQUEST | NLM_F_ACK);
            EXPECT_EQ(m.ifname, "wg0");
            // Device attributes, and above all REPLACE_PEERS, only in the first message.
            EXPECT_EQ(m.private_key.has_value(), i == 0);
            EXPECT_EQ(m.listen_port.has_value(), i == 0);
            EXPECT_EQ(m.fwmark.has_value(), i == 0);
            EXPECT_EQ(m.device_flags, i == 0 ? uint32_t{WGDEVICE_F_REPLACE_PEERS} : 0u);
            ASSERT_FALSE(m.peers.empty());
            for (const SentPeer& p : m.peers) {
                EXPECT_EQ(p.flags, 0u);  // new peers: no update_only, no continuation
                PeerUpdate q;
                q.public_key = p.key;
                q.preshared_key = p.psk;
                q.endpoint = p.endpoint;
                q.persistent_keepalive = p.keepalive;
                q.allowed_ips = p.ips;
                got.push_back(q);
            }
        }
        // Messages are filled: none ends with room for another peer (~170 bytes).
        for (std::size_t i = 0; i + 1 < msgs.size(); ++i) ASSERT_GT(msgs[i].size(), limit - 170);
        EXPECT_EQ(*sent[0].private_key, *u.private_key);
        EXPECT_EQ(*sent[0].listen_port, 51820);
        EXPECT_EQ(*sent[0].fwmark, 0x51u);
        ASSERT_EQ(got.size(), u.peers.size());
        for (std::size_t i = 0; i < got.size(); ++i) {
            const PeerUpdate& a = u.peers[i];
            const PeerUpdate& b = got[i];
            ASSERT_EQ(a.public_key, b.public_key) << i;
            ASSERT_EQ(a.preshared_key, b.preshared_key) << i;
            ASSERT_EQ(a.endpoint, b.endpoint) << i;
            ASSERT_EQ(a.persistent_keepalive, b.persistent_keepalive) << i;
            ASSERT_EQ(a.allowed_ips, b.allowed_ips) << i;
        }
    }
}

TEST(NetlinkSetEncoding, PeerWithManyAllowedIpsContinuesAsUpdateOnly) {
    DeviceUpdate u;
    u.listen_port = 1000;
    PeerUpdate big = nth_peer(7);
    big.replace_allowed_ips = true;
    big.persistent_keepalive = 25;
    big.preshared_key = nth_key(3, 0x44);
    big.allowed_ips.clear();
    for (uint32_t i = 0; i < 3000; ++i) {
        IpPrefix p = prefix("10.0.0.0/32");
        p.addr.bytes[2] = static_cast<uint8_t>(i >> 8);
        p.addr.bytes[3] = static_cast<uint8_t>(i);
        big.allowed_ips.push_back(p);
    }
    u.peers = {nth_peer(1), big, nth_peer(2)};

    auto msgs = build_set_device_messages("wg-big", u, kFamily, 1, 4096);
    ASSERT_GT(msgs.size(), 20u);
    auto sent = decode_all(msgs);
    std::vector<IpPrefix> ips;
    std::size_t parts = 0;
    for (std::size_t i = 0; i < sent.size(); ++i) {
        ASSERT_LE(msgs[i].size(), 4096u);
        for (const SentPeer& p : sent[i].peers) {
            if (p.key != big.public_key) continue;
            if (parts++ == 0) {
                EXPECT_EQ(p.flags, WGPEER_F_REPLACE_ALLOWEDIPS);
                EXPECT_EQ(p.keepalive, 25);
                EXPECT_EQ(p.psk, big.preshared_key);
                EXPECT_EQ(p.endpoint, big.endpoint);
            } else {
                // The continuation must not wipe what the first part installed, nor
                // create the peer if it is gone.
                EXPECT_EQ(p.flags, WGPEER_F_UPDATE_ONLY);
                EXPECT_FALSE(p.keepalive || p.psk || p.endpoint);
                // Continuations start a message.
                EXPECT_EQ(&p, &sent[i].peers.front());
            }
            ips.insert(ips.end(), p.ips.begin(), p.ips.end());
        }
    }
    EXPECT_GT(parts, 20u);
    EXPECT_EQ(ips, big.allowed_ips);
    EXPECT_EQ(sent.back().peers.back().key, nth_key(2));
}

TEST(NetlinkSetEncoding, RemoveAndReaddInOneMessage) {
    WgPeer current;
    current.public_key = nth_key(5);
    current.allowed_ips = {prefix("10.9.0.0/16"), prefix("fd00:9::/64")};
    current.endpoint = endpoint("192.0.2.9:5000");
    DeviceUpdate u;
    PeerUpdate rm = remove_peer_op(current.public_key);
    rm.allowed_ips = current.allowed_ips;  // ignored for a removal
    u.peers = {rm, readd_peer_op(current)};
    auto msgs = build_set_device_messages("wg0", u, kFamily, 9, 100000);
    ASSERT_EQ(msgs.size(), 1u);
    auto m = SetDecoder::decode(msgs[0], kFamily);
    EXPECT_FALSE(m.private_key || m.listen_port || m.fwmark);
    EXPECT_EQ(m.device_flags, 0u);
    ASSERT_EQ(m.peers.size(), 2u);
    EXPECT_EQ(m.peers[0].key, current.public_key);
    EXPECT_EQ(m.peers[0].flags, WGPEER_F_REMOVE_ME);
    EXPECT_FALSE(m.peers[0].has_allowedips_attr);
    EXPECT_EQ(m.peers[1].key, current.public_key);
    EXPECT_EQ(m.peers[1].flags, WGPEER_F_REPLACE_ALLOWEDIPS);
    EXPECT_FALSE(m.peers[1].endpoint);
    EXPECT_EQ(m.peers[1].keepalive, 0);  // explicitly off, as readd_peer_op asks
    EXPECT_EQ(m.peers[1].ips, current.allowed_ips);
}

TEST(NetlinkSetEncoding, UpdateOnlyAndEmptyUpdate) {
    DeviceUpdate u;
    PeerUpdate p;
    p.public_key = nth_key(3);
    p.update_only = true;
    p.endpoint = endpoint("[2001:db8::3]:777");
    u.peers = {p};
    auto m = SetDecoder::decode(build_set_device_messages("wg0", u, kFamily, 1, 0).at(0), kFamily);
    ASSERT_EQ(m.peers.size(), 1u);
    EXPECT_EQ(m.peers[0].flags, WGPEER_F_UPDATE_ONLY);
    EXPECT_EQ(m.peers[0].endpoint, p.endpoint);
    EXPECT_EQ(m.peers[0].endpoint->len, sizeof(sockaddr_in6));

    auto empty = build_set_device_messages("wg0", DeviceUpdate{}, kFamily, 1, 0);
    ASSERT_EQ(empty.size(), 1u);
    EXPECT_TRUE(SetDecoder::decode(empty[0], kFamily).peers.empty());
}

TEST(NetlinkSetEncoding, RejectsWhatCannotBeEncoded) {
    DeviceUpdate u;
    u.peers = {nth_peer(1)};
    u.peers[0].endpoint->ss.sa.sa_family = AF_UNIX;
    try {
        build_set_device_messages("wg0", u, kFamily, 1, 0);
        FAIL() << "no error";
    } catch (const WgError& e) {
        EXPECT_NE(std::string(e.what()).find("endpoint is not an IPv4 or IPv6"), std::string::npos)
            << e.what();
        EXPECT_NE(std::string(e.what()).find("peer 0"), std::string::npos) << e.what();
    }
    u.peers = {nth_peer(1)};
    u.peers[0].allowed_ips[0].len = 33;
    EXPECT_THROW(build_set_device_messages("wg0", u, kFamily, 1, 0), WgError);
    EXPECT_THROW(build_set_device_messages("", DeviceUpdate{}, kFamily, 1, 0), WgError);
    EXPECT_THROW(build_set_device_messages("sixteen-chars-xx", DeviceUpdate{}, kFamily, 1, 0),
                 WgError);
}

TEST(NetlinkGetRequest, IsADumpForTheInterface) {
    auto req = build_get_device_request("wg7", kFamily, 31);
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(req.data());
    ASSERT_EQ(nlh->nlmsg_len, req.size());
    EXPECT_EQ(nlh->nlmsg_type, kFamily);
    EXPECT_EQ(nlh->nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
    EXPECT_EQ(nlh->nlmsg_seq, 31u);
    const auto* genl = static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
    EXPECT_EQ(genl->cmd, WG_CMD_GET_DEVICE);
    auto attrs = SetDecoder::attrs(reinterpret_cast<const uint8_t*>(genl) + GENL_HDRLEN,
                                   mnl_nlmsg_get_payload_len(nlh) - GENL_HDRLEN);
    ASSERT_EQ(attrs.size(), 1u);
    EXPECT_EQ(mnl_attr_get_type(attrs[0]), WGDEVICE_A_IFNAME);
    EXPECT_STREQ(mnl_attr_get_str(attrs[0]), "wg7");
}

// --- Get: canned dumps in the kernel's layout ---

// Builds one dump message the way drivers/net/wireguard/netlink.c lays it out.
class DumpMsg {
  public:
    explicit DumpMsg(uint16_t type = kFamily, uint16_t flags = NLM_F_MULTI, uint32_t seq = kSeq,
                     uint32_t pid = kPort)
        : buf_(65536) {
        nlh_ = mnl_nlmsg_put_header(buf_.data());
        nlh_->nlmsg_type = type;
        nlh_->nlmsg_flags = flags;
        nlh_->nlmsg_seq = seq;
        nlh_->nlmsg_pid = pid;
        if (type >= NLMSG_MIN_TYPE) {
            auto* g = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh_, GENL_HDRLEN));
            g->cmd = WG_CMD_GET_DEVICE;
            g->version = 1;
        }
    }
    nlmsghdr* nlh() { return nlh_; }
    void device(uint16_t port, uint32_t fwmark, std::optional<WgKey> priv) {
        mnl_attr_put_u16(nlh_, WGDEVICE_A_LISTEN_PORT, port);
        mnl_attr_put_u32(nlh_, WGDEVICE_A_FWMARK, fwmark);
        mnl_attr_put_u32(nlh_, WGDEVICE_A_IFINDEX, 5);
        mnl_attr_put_strz(nlh_, WGDEVICE_A_IFNAME, "wg0");
        if (priv) {
            mnl_attr_put(nlh_, WGDEVICE_A_PRIVATE_KEY, 32, priv->bytes.data());
            mnl_attr_put(nlh_, WGDEVICE_A_PUBLIC_KEY, 32, nth_key(99).bytes.data());
        }
    }
    void begin_peers() { peers_ = mnl_attr_nest_start(nlh_, WGDEVICE_A_PEERS); }
    void end_peers() { mnl_attr_nest_end(nlh_, peers_); }
    void begin_peer(const WgKey& k) {
        peer_ = mnl_attr_nest_start(nlh_, 0);
        mnl_attr_put(nlh_, WGPEER_A_PUBLIC_KEY, 32, k.bytes.data());
    }
    void peer_details(const WgPeer& p) {
        WgKey psk = p.preshared_key.value_or(WgKey{});
        mnl_attr_put(nlh_, WGPEER_A_PRESHARED_KEY, 32, psk.bytes.data());
        __kernel_timespec ts{p.last_handshake_sec, 123};
        mnl_attr_put(nlh_, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof ts, &ts);
        mnl_attr_put_u16(nlh_, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, p.persistent_keepalive);
        mnl_attr_put_u64(nlh_, WGPEER_A_TX_BYTES, p.tx_bytes);
        mnl_attr_put_u64(nlh_, WGPEER_A_RX_BYTES, p.rx_bytes);
        mnl_attr_put_u32(nlh_, WGPEER_A_PROTOCOL_VERSION, 1);
        if (p.endpoint) mnl_attr_put(nlh_, WGPEER_A_ENDPOINT, p.endpoint->len, &p.endpoint->ss);
    }
    void allowed_ips(const std::vector<IpPrefix>& ips) {
        nlattr* n = mnl_attr_nest_start(nlh_, WGPEER_A_ALLOWEDIPS);
        for (const IpPrefix& ip : ips) {
            nlattr* e = mnl_attr_nest_start(nlh_, 0);
            mnl_attr_put_u8(nlh_, WGALLOWEDIP_A_CIDR_MASK, ip.len);
            mnl_attr_put_u16(nlh_, WGALLOWEDIP_A_FAMILY, static_cast<uint16_t>(ip.addr.family));
            mnl_attr_put(nlh_, WGALLOWEDIP_A_IPADDR, ip.addr.family == AF_INET ? 4 : 16,
                         ip.addr.bytes.data());
            mnl_attr_nest_end(nlh_, e);
        }
        mnl_attr_nest_end(nlh_, n);
    }
    void end_peer() { mnl_attr_nest_end(nlh_, peer_); }
    void whole_peer(const WgPeer& p) {
        begin_peer(p.public_key);
        peer_details(p);
        allowed_ips(p.allowed_ips);
        end_peer();
    }
    std::vector<uint8_t> bytes() const { return {buf_.begin(), buf_.begin() + nlh_->nlmsg_len}; }

  private:
    std::vector<uint8_t> buf_;
    nlmsghdr* nlh_;
    nlattr* peers_ = nullptr;
    nlattr* peer_ = nullptr;
};

std::vector<uint8_t> done_msg(int status = 0, uint16_t flags = NLM_F_MULTI) {
    DumpMsg d(NLMSG_DONE, flags);
    auto* p = static_cast<int*>(mnl_nlmsg_put_extra_header(d.nlh(), sizeof(int)));
    *p = status;
    return d.bytes();
}

std::vector<uint8_t> error_msg(int error, const char* extack = nullptr) {
    DumpMsg d(NLMSG_ERROR, extack ? NLM_F_CAPPED | NLM_F_ACK_TLVS : NLM_F_CAPPED);
    auto* e = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(d.nlh(), sizeof(nlmsgerr)));
    e->error = error;
    e->msg.nlmsg_len = sizeof(nlmsghdr);
    if (extack) mnl_attr_put_strz(d.nlh(), NLMSGERR_ATTR_MSG, extack);
    return d.bytes();
}

std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
    std::vector<uint8_t> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

WgPeer sample_peer(uint32_t n) {
    WgPeer p;
    PeerUpdate u = nth_peer(n);
    p.public_key = u.public_key;
    p.preshared_key = u.preshared_key;
    p.endpoint = u.endpoint;
    p.allowed_ips = u.allowed_ips;
    p.persistent_keepalive = u.persistent_keepalive.value_or(0);
    p.rx_bytes = 1000 + n;
    p.tx_bytes = (uint64_t{1} << 40) + n;
    p.last_handshake_sec = 1700000000 + n;
    return p;
}

void expect_same(const WgPeer& a, const WgPeer& b) {
    EXPECT_EQ(a.public_key, b.public_key);
    EXPECT_EQ(a.preshared_key, b.preshared_key);
    EXPECT_EQ(a.endpoint, b.endpoint);
    EXPECT_EQ(a.allowed_ips, b.allowed_ips);
    EXPECT_EQ(a.persistent_keepalive, b.persistent_keepalive);
    EXPECT_EQ(a.rx_bytes, b.rx_bytes);
    EXPECT_EQ(a.tx_bytes, b.tx_bytes);
    EXPECT_EQ(a.last_handshake_sec, b.last_handshake_sec);
}

WgDevice parse(const std::vector<std::vector<uint8_t>>& dgrams) {
    test::fuzz_seed("wg_netlink_replies", test::frame_datagrams(dgrams));
    return parse_get_device_messages(dgrams, kFamily, kSeq, kPort);
}

std::string parse_error(const std::vector<std::vector<uint8_t>>& dgrams) {
    try {
        parse(dgrams);
    } catch (const WgError& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(NetlinkGetDecoding, MergesAPeerSplitOverTwoMessages) {
    WgPeer a = sample_peer(1), b = sample_peer(2), c = sample_peer(3);
    b.preshared_key.reset();  // sent as all zeros
    b.allowed_ips = {prefix("10.2.0.0/16"), prefix("10.3.0.0/24"), prefix("fd00:2::/64"),
                     prefix("10.4.0.1/32")};
    WgKey priv = nth_key(50);

    DumpMsg m1;
    m1.device(51820, 7, priv);
    m1.begin_peers();
    m1.whole_peer(a);
    m1.begin_peer(b.public_key);
    m1.peer_details(b);
    m1.allowed_ips({b.allowed_ips.begin(), b.allowed_ips.begin() + 2});
    m1.end_peer();
    m1.end_peers();
    // The kernel's continuation: only the key and the rest of the allowed IPs.
    DumpMsg m2;
    m2.begin_peers();
    m2.begin_peer(b.public_key);
    m2.allowed_ips({b.allowed_ips.begin() + 2, b.allowed_ips.end()});
    m2.end_peer();
    m2.whole_peer(c);
    m2.end_peers();

    // Datagrams split anywhere between messages, and several messages per datagram.
    for (bool one_datagram : {false, true}) {
        std::vector<std::vector<uint8_t>> dgrams =
            one_datagram
                ? std::vector<std::vector<uint8_t>>{concat({m1.bytes(), m2.bytes(), done_msg()})}
                : std::vector<std::vector<uint8_t>>{m1.bytes(), m2.bytes(), done_msg()};
        WgDevice d = parse(dgrams);
        ASSERT_TRUE(d.private_key);
        EXPECT_EQ(*d.private_key, priv);
        EXPECT_EQ(d.listen_port, 51820);
        EXPECT_EQ(d.fwmark, 7u);
        ASSERT_EQ(d.peers.size(), 3u);
        expect_same(d.peers[0], a);
        expect_same(d.peers[1], b);
        expect_same(d.peers[2], c);
    }
}

TEST(NetlinkGetDecoding, EmptyDeviceWithoutKey) {
    DumpMsg m;
    m.device(0, 0, std::nullopt);
    WgDevice d = parse({m.bytes(), done_msg()});
    EXPECT_FALSE(d.private_key);
    EXPECT_TRUE(d.peers.empty());
}

TEST(NetlinkGetDecoding, InterruptedDumpIsReported) {
    DumpMsg m(kFamily, NLM_F_MULTI | NLM_F_DUMP_INTR);
    m.device(1, 0, std::nullopt);
    GetDeviceDecoder dec(kFamily, kSeq, kPort);
    EXPECT_FALSE(dec.feed(m.bytes()));
    EXPECT_TRUE(dec.feed(done_msg()));
    EXPECT_TRUE(dec.interrupted());
    EXPECT_NE(parse_error({m.bytes(), done_msg()}).find("NLM_F_DUMP_INTR"), std::string::npos);
}

// Found by fuzz_wg_netlink_replies: an empty datagram at an address not aligned for
// nlmsghdr was "copied" to an empty vector, memcpy to a null pointer, which is undefined
// (UBSan stopped there). Datagrams split out of a larger buffer land at any address.
TEST(NetlinkGetDecoding, EmptyDatagramAtAnOddAddress) {
    std::vector<uint8_t> done = done_msg();
    std::vector<uint8_t> buf(done.size() + 1);
    std::memcpy(buf.data() + 1, done.data(), done.size());
    std::span<const uint8_t> empty(buf.data() + 1, 0), odd(buf.data() + 1, done.size());
    test::fuzz_seed("wg_netlink_replies", test::frame_datagrams({{}, done}));
    GetDeviceDecoder dec(kFamily, kSeq, kPort);
    EXPECT_FALSE(dec.feed(empty));
    EXPECT_TRUE(dec.feed(odd));  // a misaligned datagram is still read
    EXPECT_EQ(decode_family_reply(empty, kSeq, kPort), std::nullopt);
    EXPECT_FALSE(decode_ack(empty, kSeq, kPort, "setting device wg0"));
}

// Each malformed reply must name what is wrong.
struct Malformed {
    const char* name;
    std::function<std::vector<std::vector<uint8_t>>()> build;
    const char* expect;
};

std::vector<std::vector<uint8_t>> with_peer_attr(uint16_t type, std::vector<uint8_t> payload) {
    DumpMsg m;
    m.begin_peers();
    m.begin_peer(nth_key(1));
    mnl_attr_put(m.nlh(), type, payload.size(), payload.data());
    m.end_peer();
    m.end_peers();
    return {m.bytes(), done_msg()};
}

std::vector<std::vector<uint8_t>> with_allowed_ip(std::optional<uint16_t> family,
                                                  std::vector<uint8_t> addr,
                                                  std::optional<uint8_t> cidr) {
    DumpMsg m;
    m.begin_peers();
    m.begin_peer(nth_key(1));
    nlattr* ips = mnl_attr_nest_start(m.nlh(), WGPEER_A_ALLOWEDIPS);
    nlattr* e = mnl_attr_nest_start(m.nlh(), 0);
    if (family) mnl_attr_put_u16(m.nlh(), WGALLOWEDIP_A_FAMILY, *family);
    if (!addr.empty()) mnl_attr_put(m.nlh(), WGALLOWEDIP_A_IPADDR, addr.size(), addr.data());
    if (cidr) mnl_attr_put_u8(m.nlh(), WGALLOWEDIP_A_CIDR_MASK, *cidr);
    mnl_attr_nest_end(m.nlh(), e);
    mnl_attr_nest_end(m.nlh(), ips);
    m.end_peer();
    m.end_peers();
    return {m.bytes(), done_msg()};
}

TEST(NetlinkGetDecoding, MalformedRepliesNameTheProblem) {
    const std::vector<Malformed> cases = {
        {"short public key",
         [] { return with_peer_attr(WGPEER_A_PUBLIC_KEY, std::vector<uint8_t>(31)); },
         "WGPEER_A_PUBLIC_KEY has 31 bytes, expected 32"},
        {"long preshared key",
         [] { return with_peer_attr(WGPEER_A_PRESHARED_KEY, std::vector<uint8_t>(33)); },
         "WGPEER_A_PRESHARED_KEY has 33 bytes, expected 32"},
        {"endpoint of wrong size",
         [] {
             std::vector<uint8_t> sa(10);
             sa_family_t f = AF_INET;
             std::memcpy(sa.data(), &f, sizeof f);
             return with_peer_attr(WGPEER_A_ENDPOINT, sa);
         },
         "WGPEER_A_ENDPOINT of 10 bytes"},
        {"IPv6 endpoint in a sockaddr_in",
         [] {
             std::vector<uint8_t> sa(sizeof(sockaddr_in));
             sa_family_t f = AF_INET6;
             std::memcpy(sa.data(), &f, sizeof f);
             return with_peer_attr(WGPEER_A_ENDPOINT, sa);
         },
         "neither sockaddr_in nor sockaddr_in6"},
        {"rx bytes as u32",
         [] { return with_peer_attr(WGPEER_A_RX_BYTES, std::vector<uint8_t>(4)); },
         "WGPEER_A_RX_BYTES has 4 bytes, expected 8"},
        {"short handshake time",
         [] { return with_peer_attr(WGPEER_A_LAST_HANDSHAKE_TIME, std::vector<uint8_t>(8)); },
         "WGPEER_A_LAST_HANDSHAKE_TIME has 8 bytes, expected 16"},
        {"keepalive as u8",
         [] {
             return with_peer_attr(WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, std::vector<uint8_t>(1));
         },
         "WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL has 1 bytes, expected 2"},
        {"peer without key",
         [] {
             DumpMsg m;
             m.begin_peers();
             nlattr* p = mnl_attr_nest_start(m.nlh(), 0);
             mnl_attr_put_u16(m.nlh(), WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 5);
             mnl_attr_nest_end(m.nlh(), p);
             m.end_peers();
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "a peer without WGPEER_A_PUBLIC_KEY"},
        {"truncated attribute (length beyond its container)",
         [] {
             DumpMsg m;
             m.begin_peers();
             m.begin_peer(nth_key(1));
             m.end_peer();
             m.end_peers();
             auto bytes = m.bytes();
             // The peer's key claims 8 more bytes than the peer nest holds.
             auto* key = reinterpret_cast<nlattr*>(bytes.data() + sizeof(nlmsghdr) + GENL_HDRLEN +
                                                   2 * MNL_ATTR_HDRLEN);
             key->nla_len += 8;
             return std::vector<std::vector<uint8_t>>{bytes, done_msg()};
         },
         "truncated or invalid attribute in a WGDEVICE_A_PEERS entry"},
        {"bad nesting (peers list holds a bare value)",
         [] {
             DumpMsg m;
             m.begin_peers();
             mnl_attr_put_u16(m.nlh(), 0, 7);  // 2 bytes: too short to be an attribute
             m.end_peers();
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "truncated or invalid attribute in a WGDEVICE_A_PEERS entry"},
        {"zero-length attribute",
         [] {
             DumpMsg m;
             m.device(1, 2, std::nullopt);
             auto bytes = m.bytes();
             auto* first = reinterpret_cast<nlattr*>(bytes.data() + sizeof(nlmsghdr) + GENL_HDRLEN);
             first->nla_len = 0;
             return std::vector<std::vector<uint8_t>>{bytes, done_msg()};
         },
         "truncated or invalid attribute in WG_CMD_GET_DEVICE"},
        {"device key of wrong length",
         [] {
             DumpMsg m;
             std::vector<uint8_t> k(16);
             mnl_attr_put(m.nlh(), WGDEVICE_A_PRIVATE_KEY, k.size(), k.data());
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "WGDEVICE_A_PRIVATE_KEY has 16 bytes, expected 32"},
        {"interface name without NUL",
         [] {
             DumpMsg m;
             mnl_attr_put(m.nlh(), WGDEVICE_A_IFNAME, 4, "wg0x");
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "WGDEVICE_A_IFNAME is not a NUL-terminated string"},
        {"allowed IP without family",
         [] {
             return with_allowed_ip(std::nullopt, {10, 0, 0, 1}, 32);
         },
         "an allowed IP without WGALLOWEDIP_A_FAMILY"},
        {"allowed IP of unknown family",
         [] {
             return with_allowed_ip(7, {10, 0, 0, 1}, 32);
         },
         "WGALLOWEDIP_A_FAMILY 7 is not IPv4 or IPv6"},
        {"IPv4 allowed IP with 16-byte address",
         [] { return with_allowed_ip(AF_INET, std::vector<uint8_t>(16), 32); },
         "WGALLOWEDIP_A_IPADDR has 16 bytes, expected 4"},
        {"cidr beyond the family",
         [] {
             return with_allowed_ip(AF_INET, {10, 0, 0, 1}, 33);
         },
         "WGALLOWEDIP_A_CIDR_MASK 33 exceeds 32"},
        {"same peer twice, not as a continuation",
         [] {
             DumpMsg m;
             m.begin_peers();
             m.whole_peer(sample_peer(1));
             m.whole_peer(sample_peer(2));
             m.whole_peer(sample_peer(1));
             m.end_peers();
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "appears twice"},
        {"truncated netlink message",
         [] {
             DumpMsg m;
             m.device(1, 2, std::nullopt);
             auto bytes = m.bytes();
             // erase, not resize(size - 6): GCC 12 with ASan cannot prove size >= 6 and
             // reports the resize as a huge memset (-Wstringop-overflow).
             bytes.erase(bytes.end() - 6, bytes.end());
             return std::vector<std::vector<uint8_t>>{bytes, done_msg()};
         },
         "truncated netlink message"},
        // Found by fuzz_wg_netlink_replies: libmnl's mnl_nlmsg_ok() compares the length
        // as an int, so a message claiming 2 GiB or more "fitted", and the walk then read
        // gigabytes past the datagram (SEGV).
        {"message claiming 2 GiB or more",
         [] {
             DumpMsg m;
             m.device(1, 2, std::nullopt);
             auto bytes = m.bytes();
             reinterpret_cast<nlmsghdr*>(bytes.data())->nlmsg_len = 0xfa000024u;
             return std::vector<std::vector<uint8_t>>{bytes, done_msg()};
         },
         "truncated netlink message"},
        {"wrong sequence number",
         [] {
             DumpMsg m(kFamily, NLM_F_MULTI, kSeq + 1);
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "sequence number 4243, expected 4242"},
        {"wrong port",
         [] {
             DumpMsg m(kFamily, NLM_F_MULTI, kSeq, kPort + 1);
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "message for port 778, expected 777"},
        {"other message type",
         [] {
             DumpMsg m(kFamily + 1);
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg()};
         },
         "unexpected message type 30"},
        {"kernel error with extended ack",
         [] { return std::vector<std::vector<uint8_t>>{error_msg(-ENODEV, "no such wg")}; },
         "No such device (kernel: no such wg)"},
        {"not a WireGuard device",
         [] { return std::vector<std::vector<uint8_t>>{error_msg(-EOPNOTSUPP)}; },
         "not a kernel WireGuard interface?"},
        {"dump failed part-way",
         [] {
             DumpMsg m;
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg(-EMSGSIZE)};
         },
         "Message too long"},
        // The status was negated as an int, undefined for INT_MIN: found in the rtnetlink
        // decoder by fuzz_rtnl_replies, and the same code was here.
        {"error beyond any errno",
         [] { return std::vector<std::vector<uint8_t>>{error_msg(INT_MIN)}; },
         "NLMSG_ERROR carries -2147483648, not an errno"},
        {"dump status beyond any errno",
         [] {
             DumpMsg m;
             return std::vector<std::vector<uint8_t>>{m.bytes(), done_msg(INT_MIN)};
         },
         "NLMSG_DONE carries -2147483648, not an errno"},
        {"short error message",
         [] {
             DumpMsg d(NLMSG_ERROR, 0);
             mnl_nlmsg_put_extra_header(d.nlh(), 4);
             return std::vector<std::vector<uint8_t>>{d.bytes()};
         },
         "NLMSG_ERROR shorter than struct nlmsgerr"},
        {"no NLMSG_DONE",
         [] {
             DumpMsg m;
             return std::vector<std::vector<uint8_t>>{m.bytes()};
         },
         "dump ended without NLMSG_DONE"},
    };
    for (const Malformed& c : cases) {
        std::string err = parse_error(c.build());
        EXPECT_NE(err.find(c.expect), std::string::npos)
            << c.name << ": expected '" << c.expect << "' in: " << err;
        EXPECT_EQ(err.rfind("kernel WireGuard: ", 0), 0u) << c.name << ": " << err;
    }
}

// --- The family reply and the ack ---

std::vector<uint8_t> family_reply(std::optional<uint16_t> id, uint8_t cmd = CTRL_CMD_NEWFAMILY) {
    DumpMsg d(GENL_ID_CTRL, 0);
    static_cast<genlmsghdr*>(mnl_nlmsg_get_payload(d.nlh()))->cmd = cmd;
    mnl_attr_put_strz(d.nlh(), CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
    if (id) mnl_attr_put_u16(d.nlh(), CTRL_ATTR_FAMILY_ID, *id);
    return d.bytes();
}

std::vector<uint8_t> noop_msg() {
    return DumpMsg(NLMSG_NOOP, 0).bytes();
}

// An NLMSG_ERROR with `n` bytes of payload (-ENOENT's first ones), less than nlmsgerr,
// in a vector of exactly its size: ASan sees a read past it.
std::vector<uint8_t> short_error(std::size_t n) {
    DumpMsg d(NLMSG_ERROR, 0);
    int e = -ENOENT;
    auto* p = static_cast<uint8_t*>(mnl_nlmsg_put_extra_header(d.nlh(), n));
    std::memcpy(p, &e, std::min(n, sizeof e));
    return d.bytes();
}

std::optional<uint16_t> family(const std::vector<uint8_t>& dgram) {
    test::fuzz_seed("wg_netlink_replies", test::frame_datagrams({dgram}));
    return decode_family_reply(dgram, kSeq, kPort);
}

bool ack(const std::vector<uint8_t>& dgram) {
    test::fuzz_seed("wg_netlink_replies", test::frame_datagrams({dgram}));
    return decode_ack(dgram, kSeq, kPort, "setting device wg0");
}

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const WgError& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(NetlinkFamilyReply, GivesTheIdOrNamesTheProblem) {
    EXPECT_EQ(family(family_reply(kFamily)), std::optional<uint16_t>(kFamily));
    EXPECT_EQ(family(concat({noop_msg(), family_reply(kFamily)})),
              std::optional<uint16_t>(kFamily));
    EXPECT_EQ(family(noop_msg()), std::nullopt);  // no answer yet: read on
    struct Case {
        const char* name;
        std::vector<uint8_t> dgram;
        const char* expect;
    };
    for (const Case& c : std::vector<Case>{
             {"no family", error_msg(-ENOENT), "kernel WireGuard is not available"},
             {"other error", error_msg(-EPERM, "denied"),
              "Operation not permitted (kernel: denied)"},
             {"an ack", error_msg(0), "an ack instead of the family"},
             {"no id", family_reply(std::nullopt), "no CTRL_ATTR_FAMILY_ID"},
             {"wrong command", family_reply(kFamily, CTRL_CMD_GETFAMILY), "command 3, expected 1"},
             {"wrong type", DumpMsg(kFamily, 0).bytes(), "unexpected message type"},
             {"wrong seq", DumpMsg(GENL_ID_CTRL, 0, kSeq + 1).bytes(), "sequence number 4243"},
             // Found by fuzz_wg_netlink_replies: the error of a short NLMSG_ERROR was read
             // (for ENOENT) after the check that rejects it, past the end of the message.
             {"short error", short_error(0), "NLMSG_ERROR shorter than struct nlmsgerr"},
             {"short error, 3 bytes", short_error(3), "NLMSG_ERROR shorter than struct nlmsgerr"},
             {"short error, 16 bytes", short_error(16), "NLMSG_ERROR shorter than struct nlmsgerr"},
         }) {
        std::string err = error_of([&] { family(c.dgram); });
        EXPECT_NE(err.find(c.expect), std::string::npos) << c.name << ": " << err;
    }
}

TEST(NetlinkAck, AcksOrNamesTheProblem) {
    EXPECT_TRUE(ack(error_msg(0)));
    EXPECT_TRUE(ack(concat({noop_msg(), error_msg(0)})));
    EXPECT_FALSE(ack(noop_msg()));
    EXPECT_NE(error_of([] {
                  ack(error_msg(-EINVAL, "bad peer"));
              }).find("setting device wg0: Invalid argument (kernel: bad peer)"),
              std::string::npos);
    EXPECT_NE(error_of([] { ack(DumpMsg().bytes()); }).find("message type 29 instead of the ack"),
              std::string::npos);
    EXPECT_NE(error_of([] {
                  ack(DumpMsg(NLMSG_ERROR, 0, kSeq - 1).bytes());
              }).find("sequence number 4241, expected 4242"),
              std::string::npos);
}

TEST(NetlinkGetDecoding, RoundTripOfManyPeersOverManyMessages) {
    // 5000 peers spread over messages of ~40 peers, as a large dump arrives.
    std::vector<WgPeer> peers;
    for (uint32_t i = 0; i < 5000; ++i) peers.push_back(sample_peer(i));
    std::vector<std::vector<uint8_t>> dgrams;
    for (std::size_t i = 0; i < peers.size(); i += 40) {
        DumpMsg m;
        if (i == 0) m.device(9, 9, nth_key(4));
        m.begin_peers();
        for (std::size_t j = i; j < std::min(peers.size(), i + 40); ++j) m.whole_peer(peers[j]);
        m.end_peers();
        dgrams.push_back(m.bytes());
    }
    dgrams.push_back(done_msg());
    WgDevice d = parse(dgrams);
    ASSERT_EQ(d.peers.size(), peers.size());
    for (std::size_t i = 0; i < peers.size(); ++i) expect_same(d.peers[i], peers[i]);
}

}  // namespace
}  // namespace nb
