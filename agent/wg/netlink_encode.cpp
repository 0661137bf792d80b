// Encoding WireGuard's generic netlink requests: WG_CMD_SET_DEVICE cut to a message
// size, and the WG_CMD_GET_DEVICE dump request.
#include "agent/wg/netlink_codec.hpp"

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "base/errno_text.hpp"
#include "base/net/netlink_checks.hpp"

namespace nb {

namespace {

// --- Writing ---

std::size_t attr_size(std::size_t payload) {
    return MNL_ALIGN(MNL_ATTR_HDRLEN + payload);
}

std::size_t endpoint_len(int family) {
    return family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

std::size_t allowed_ip_size(const IpPrefix& p) {
    return MNL_ATTR_HDRLEN + attr_size(sizeof(uint16_t)) +
           attr_size(p.addr.family == AF_INET ? 4 : 16) + attr_size(sizeof(uint8_t));
}

uint32_t peer_flags(const PeerUpdate& p) {
    uint32_t f = 0;
    if (p.remove) f |= WGPEER_F_REMOVE_ME;
    if (p.update_only) f |= WGPEER_F_UPDATE_ONLY;
    if (p.replace_allowed_ips && !p.remove) f |= WGPEER_F_REPLACE_ALLOWEDIPS;
    return f;
}

// The peer nest up to (not including) its allowed IPs.
std::size_t peer_head_size(const PeerUpdate& p) {
    std::size_t n = MNL_ATTR_HDRLEN + attr_size(WG_KEY_LEN);
    if (peer_flags(p)) n += attr_size(sizeof(uint32_t));
    if (p.remove) return n;
    if (p.preshared_key) n += attr_size(WG_KEY_LEN);
    if (p.endpoint) n += attr_size(endpoint_len(p.endpoint->family()));
    if (p.persistent_keepalive) n += attr_size(sizeof(uint16_t));
    return n;
}

void validate_peer(const PeerUpdate& p, std::size_t index) {
    auto fail = [&](const std::string& why) {
        throw WgError("kernel WireGuard: peer " + std::to_string(index) + " (" +
                      p.public_key.base64() + "): " + why);
    };
    if (p.endpoint) {
        int fam = p.endpoint->family();
        if ((fam != AF_INET && fam != AF_INET6) || p.endpoint->len != endpoint_len(fam))
            fail("endpoint is not an IPv4 or IPv6 socket address");
    }
    for (const IpPrefix& ip : p.allowed_ips)
        if ((ip.addr.family != AF_INET && ip.addr.family != AF_INET6) ||
            ip.len > ip.addr.max_prefix())
            fail("allowed IP " + ip.str() + " is not a valid IPv4/IPv6 prefix");
}

class SetBuilder {
  public:
    SetBuilder(std::string_view ifname, uint16_t family, uint32_t seq, std::size_t max_msg)
        : ifname_(ifname),
          family_(family),
          seq_(seq),
          max_(max_msg),
          fresh_len_(MNL_NLMSG_HDRLEN + GENL_HDRLEN + attr_size(ifname.size() + 1)),
          buf_(max_msg) {}

    std::vector<std::vector<uint8_t>> build(const DeviceUpdate& u) {
        start();
        if (u.private_key)
            mnl_attr_put(nlh_, WGDEVICE_A_PRIVATE_KEY, WG_KEY_LEN, u.private_key->bytes.data());
        if (u.listen_port) mnl_attr_put_u16(nlh_, WGDEVICE_A_LISTEN_PORT, *u.listen_port);
        if (u.fwmark) mnl_attr_put_u32(nlh_, WGDEVICE_A_FWMARK, *u.fwmark);
        if (u.replace_peers) mnl_attr_put_u32(nlh_, WGDEVICE_A_FLAGS, WGDEVICE_F_REPLACE_PEERS);
        for (std::size_t i = 0; i < u.peers.size(); ++i) {
            validate_peer(u.peers[i], i);
            add_peer(u.peers[i]);
        }
        finish();
        return std::move(out_);
    }

  private:
    void start() {
        std::memset(buf_.data(), 0, buf_.size());
        nlh_ = mnl_nlmsg_put_header(buf_.data());
        nlh_->nlmsg_type = family_;
        nlh_->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh_->nlmsg_seq = seq_++;
        auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(genlmsghdr)));
        genl->cmd = WG_CMD_SET_DEVICE;
        genl->version = WG_GENL_VERSION;
        mnl_attr_put_strz(nlh_, WGDEVICE_A_IFNAME, ifname_.c_str());
        peers_ = nullptr;
    }
    void finish() {
        if (peers_) mnl_attr_nest_end(nlh_, peers_);
        if (nlh_->nlmsg_len > max_)
            throw WgError("kernel WireGuard: internal error: set message of " +
                          std::to_string(nlh_->nlmsg_len) + " bytes exceeds " +
                          std::to_string(max_));
        out_.emplace_back(buf_.begin(), buf_.begin() + nlh_->nlmsg_len);
    }
    // Makes room for `n` more bytes inside the peers nest, starting a new message when
    // this one already carries peers and has no room left.
    void reserve(std::size_t n) {
        std::size_t need = n + (peers_ ? 0 : MNL_ATTR_HDRLEN);
        if (nlh_->nlmsg_len + need > max_ && peers_) {
            finish();
            start();
            need = n + MNL_ATTR_HDRLEN;
        }
        if (nlh_->nlmsg_len + need > max_)
            throw WgError("kernel WireGuard: internal error: a peer does not fit an empty message");
        if (!peers_) peers_ = mnl_attr_nest_start(nlh_, WGDEVICE_A_PEERS);
    }

    void add_peer(const PeerUpdate& p) {
        const bool has_ips = !p.remove && !p.allowed_ips.empty();
        std::size_t whole = peer_head_size(p);
        if (has_ips) {
            whole += MNL_ATTR_HDRLEN;
            for (const IpPrefix& ip : p.allowed_ips) whole += allowed_ip_size(ip);
        }
        // A peer that fits a message is never split; a larger one starts where it is and
        // continues in the next messages.
        if (fresh_len_ + MNL_ATTR_HDRLEN + whole <= max_)
            reserve(whole);
        else
            reserve(peer_head_size(p) +
                    (has_ips ? MNL_ATTR_HDRLEN + allowed_ip_size(p.allowed_ips.front()) : 0));
        nlattr* peer = mnl_attr_nest_start(nlh_, 0);
        mnl_attr_put(nlh_, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p.public_key.bytes.data());
        if (uint32_t f = peer_flags(p)) mnl_attr_put_u32(nlh_, WGPEER_A_FLAGS, f);
        if (!p.remove) {
            if (p.preshared_key)
                mnl_attr_put(nlh_, WGPEER_A_PRESHARED_KEY, WG_KEY_LEN,
                             p.preshared_key->bytes.data());
            if (p.endpoint) mnl_attr_put(nlh_, WGPEER_A_ENDPOINT, p.endpoint->len, &p.endpoint->ss);
            if (p.persistent_keepalive)
                mnl_attr_put_u16(nlh_, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
                                 *p.persistent_keepalive);
        }
        // A removed peer's allowed IPs go with it; the kernel ignores any sent.
        if (!has_ips) {
            mnl_attr_nest_end(nlh_, peer);
            return;
        }
        nlattr* ips = mnl_attr_nest_start(nlh_, WGPEER_A_ALLOWEDIPS);
        for (const IpPrefix& ip : p.allowed_ips) {
            const std::size_t n = allowed_ip_size(ip);
            if (nlh_->nlmsg_len + n > max_) {
                // The peer exists now (or was skipped by update_only, which the rest then
                // respects too): its remaining allowed IPs go to the same key, adding to
                // what is there, so neither REPLACE_ALLOWEDIPS nor the other attributes
                // are repeated.
                mnl_attr_nest_end(nlh_, ips);
                mnl_attr_nest_end(nlh_, peer);
                finish();
                start();
                reserve(MNL_ATTR_HDRLEN + attr_size(WG_KEY_LEN) + attr_size(sizeof(uint32_t)) +
                        MNL_ATTR_HDRLEN + n);
                peer = mnl_attr_nest_start(nlh_, 0);
                mnl_attr_put(nlh_, WGPEER_A_PUBLIC_KEY, WG_KEY_LEN, p.public_key.bytes.data());
                mnl_attr_put_u32(nlh_, WGPEER_A_FLAGS, WGPEER_F_UPDATE_ONLY);
                ips = mnl_attr_nest_start(nlh_, WGPEER_A_ALLOWEDIPS);
            }
            nlattr* entry = mnl_attr_nest_start(nlh_, 0);
            mnl_attr_put_u16(nlh_, WGALLOWEDIP_A_FAMILY, static_cast<uint16_t>(ip.addr.family));
            mnl_attr_put(nlh_, WGALLOWEDIP_A_IPADDR, ip.addr.family == AF_INET ? 4 : 16,
                         ip.addr.bytes.data());
            mnl_attr_put_u8(nlh_, WGALLOWEDIP_A_CIDR_MASK, ip.len);
            mnl_attr_nest_end(nlh_, entry);
        }
        mnl_attr_nest_end(nlh_, ips);
        mnl_attr_nest_end(nlh_, peer);
    }

    std::string ifname_;
    uint16_t family_;
    uint32_t seq_;
    std::size_t max_;
    std::size_t fresh_len_;  // a message with only its headers and the interface name
    std::vector<uint8_t> buf_;
    nlmsghdr* nlh_ = nullptr;
    nlattr* peers_ = nullptr;
    std::vector<std::vector<uint8_t>> out_;
};

}  // namespace

void check_wg_ifname(std::string_view ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('\0') != std::string_view::npos)
        throw WgError("kernel WireGuard: invalid interface name '" + std::string(ifname) + "'");
}

// --- Encoding ---

std::vector<std::vector<uint8_t>> build_set_device_messages(std::string_view ifname,
                                                            const DeviceUpdate& update,
                                                            uint16_t family_id, uint32_t first_seq,
                                                            std::size_t max_msg) {
    check_wg_ifname(ifname);
    return SetBuilder(ifname, family_id, first_seq, std::max(max_msg, kWgNetlinkMinMessageSize))
        .build(update);
}

std::vector<uint8_t> build_get_device_request(std::string_view ifname, uint16_t family_id,
                                              uint32_t seq) {
    check_wg_ifname(ifname);
    std::vector<uint8_t> buf(256);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = family_id;
    // Dump-only command; the dump's NLMSG_DONE ends it, so no ack is asked for.
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq;
    auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
    genl->cmd = WG_CMD_GET_DEVICE;
    genl->version = WG_GENL_VERSION;
    mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, std::string(ifname).c_str());
    buf.resize(nlh->nlmsg_len);
    return buf;
}
}  // namespace nb
