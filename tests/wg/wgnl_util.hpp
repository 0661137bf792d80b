// Shared by the WireGuard netlink tests: deterministic peers, and an independent decoder
// of WG_CMD_SET_DEVICE messages (written against the uapi header, not the agent's parser)
// so the encoder's output can be checked peer by peer.
#pragma once

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "agent/wg/wg_control.hpp"

namespace nb::test {

inline WgKey nth_key(uint32_t n, uint8_t salt = 0x11) {
    WgKey k;
    for (std::size_t i = 0; i < k.bytes.size(); ++i)
        k.bytes[i] = static_cast<uint8_t>((n >> ((i % 4) * 8)) ^ (i * 7) ^ salt);
    return k;
}

// Peer n: 10.x.y.z/32 and fd00::n/128, endpoint 192.0.2.x or [2001:db8::n] (documentation
// ranges: nothing is ever sent there, the kernel only stores them).
inline PeerUpdate nth_peer(uint32_t n, bool with_endpoint = true) {
    PeerUpdate p;
    p.public_key = nth_key(n);
    IpPrefix v4;
    v4.addr.family = AF_INET;
    v4.addr.bytes[0] = 10;
    v4.addr.bytes[1] = static_cast<uint8_t>(n >> 16);
    v4.addr.bytes[2] = static_cast<uint8_t>(n >> 8);
    v4.addr.bytes[3] = static_cast<uint8_t>(n);
    v4.len = 32;
    IpPrefix v6;
    v6.addr.family = AF_INET6;
    v6.addr.bytes[0] = 0xfd;
    for (int i = 0; i < 4; ++i) v6.addr.bytes[12 + i] = static_cast<uint8_t>(n >> (24 - 8 * i));
    v6.len = 128;
    p.allowed_ips = {v4, v6};
    if (with_endpoint) {
        IpAddr ip;
        if (n % 2 == 0) {
            ip = *IpAddr::parse("192.0.2.1");
            ip.bytes[3] = static_cast<uint8_t>(n % 250 + 1);
        } else {
            ip = *IpAddr::parse("2001:db8::");
            ip.bytes[14] = static_cast<uint8_t>(n >> 8);
            ip.bytes[15] = static_cast<uint8_t>(n);
        }
        p.endpoint = SockAddr::from(ip, static_cast<uint16_t>(1024 + n % 60000));
    }
    if (n % 3 == 0) p.persistent_keepalive = static_cast<uint16_t>(n % 100 + 1);
    if (n % 5 == 0) p.preshared_key = nth_key(n, 0x77);
    return p;
}

// One decoded peer entry of a set message, as sent.
struct SentPeer {
    WgKey key;
    uint32_t flags = 0;
    std::optional<WgKey> psk;
    std::optional<SockAddr> endpoint;
    std::optional<uint16_t> keepalive;
    bool has_allowedips_attr = false;
    std::vector<IpPrefix> ips;
};

struct SentMessage {
    uint32_t seq = 0;
    uint16_t flags = 0;
    std::string ifname;
    std::optional<WgKey> private_key;
    std::optional<uint16_t> listen_port;
    std::optional<uint32_t> fwmark;
    uint32_t device_flags = 0;
    std::vector<SentPeer> peers;
};

struct SetDecoder {
    static std::vector<const nlattr*> attrs(const void* p, std::size_t len) {
        std::vector<const nlattr*> out;
        const auto* a = static_cast<const nlattr*>(p);
        int rem = static_cast<int>(len);
        while (mnl_attr_ok(a, rem)) {
            out.push_back(a);
            rem -= static_cast<int>(MNL_ALIGN(a->nla_len));
            a = mnl_attr_next(a);
        }
        EXPECT_LE(rem, 0) << "leftover bytes in a container";
        return out;
    }
    static std::vector<const nlattr*> nested(const nlattr* a) {
        return attrs(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
    }
    static WgKey key(const nlattr* a) {
        WgKey k;
        EXPECT_EQ(mnl_attr_get_payload_len(a), 32u);
        std::memcpy(k.bytes.data(), mnl_attr_get_payload(a), 32);
        return k;
    }

    static SentMessage decode(const std::vector<uint8_t>& msg, uint16_t family) {
        SentMessage m;
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(msg.data());
        EXPECT_EQ(nlh->nlmsg_len, msg.size());
        EXPECT_EQ(nlh->nlmsg_type, family);
        m.seq = nlh->nlmsg_seq;
        m.flags = nlh->nlmsg_flags;
        const auto* genl = static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(nlh));
        EXPECT_EQ(genl->cmd, WG_CMD_SET_DEVICE);
        EXPECT_EQ(genl->version, WG_GENL_VERSION);
        for (const nlattr* a : attrs(reinterpret_cast<const uint8_t*>(genl) + GENL_HDRLEN,
                                     mnl_nlmsg_get_payload_len(nlh) - GENL_HDRLEN)) {
            switch (mnl_attr_get_type(a)) {
                case WGDEVICE_A_IFNAME:
                    m.ifname = mnl_attr_get_str(a);
                    break;
                case WGDEVICE_A_PRIVATE_KEY:
                    m.private_key = key(a);
                    break;
                case WGDEVICE_A_LISTEN_PORT:
                    m.listen_port = mnl_attr_get_u16(a);
                    break;
                case WGDEVICE_A_FWMARK:
                    m.fwmark = mnl_attr_get_u32(a);
                    break;
                case WGDEVICE_A_FLAGS:
                    m.device_flags = mnl_attr_get_u32(a);
                    break;
                case WGDEVICE_A_PEERS:
                    for (const nlattr* pa : nested(a)) m.peers.push_back(peer(pa));
                    break;
                default:
                    ADD_FAILURE() << "unexpected device attribute " << mnl_attr_get_type(a);
            }
        }
        return m;
    }

    static SentPeer peer(const nlattr* nest) {
        SentPeer p;
        for (const nlattr* a : nested(nest)) {
            switch (mnl_attr_get_type(a)) {
                case WGPEER_A_PUBLIC_KEY:
                    p.key = key(a);
                    break;
                case WGPEER_A_FLAGS:
                    p.flags = mnl_attr_get_u32(a);
                    break;
                case WGPEER_A_PRESHARED_KEY:
                    p.psk = key(a);
                    break;
                case WGPEER_A_ENDPOINT: {
                    SockAddr s;
                    s.len = static_cast<socklen_t>(
                        std::min<size_t>(mnl_attr_get_payload_len(a), sizeof(s.ss)));
                    std::memcpy(&s.ss, mnl_attr_get_payload(a), s.len);
                    p.endpoint = s;
                    break;
                }
                case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
                    p.keepalive = mnl_attr_get_u16(a);
                    break;
                case WGPEER_A_ALLOWEDIPS:
                    p.has_allowedips_attr = true;
                    for (const nlattr* ipn : nested(a)) {
                        IpPrefix ip;
                        for (const nlattr* f : nested(ipn)) {
                            if (mnl_attr_get_type(f) == WGALLOWEDIP_A_FAMILY)
                                ip.addr.family = mnl_attr_get_u16(f);
                            if (mnl_attr_get_type(f) == WGALLOWEDIP_A_IPADDR)
                                std::memcpy(ip.addr.bytes.data(), mnl_attr_get_payload(f),
                                            mnl_attr_get_payload_len(f));
                            if (mnl_attr_get_type(f) == WGALLOWEDIP_A_CIDR_MASK)
                                ip.len = mnl_attr_get_u8(f);
                        }
                        p.ips.push_back(ip);
                    }
                    break;
                default:
                    ADD_FAILURE() << "unexpected peer attribute " << mnl_attr_get_type(a);
            }
        }
        return p;
    }
};

}  // namespace nb::test
