#include "agent/wg/netlink_control.hpp"

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "agent/net/netlink_checks.hpp"

namespace nb {

namespace {

constexpr int kDumpAttempts = 5;
// A dump skb is at most 32 KiB plus headers; twice that never truncates (truncation is
// detected anyway: libmnl reports MSG_TRUNC as ENOSPC).
constexpr std::size_t kRecvBuffer = 65536;
constexpr std::size_t kMaxMessageSize = 65536;

std::string errno_text(int e) {
    return std::strerror(e);
}

// --- Reading ---

class Reader {
  public:
    explicit Reader(std::string what) : what_(std::move(what)) {}

    [[noreturn]] void malformed(const std::string& detail) const {
        throw WgError("kernel WireGuard: " + what_ + ": malformed netlink reply: " + detail);
    }
    [[noreturn]] void kernel_error(int error, const std::string& text) const {
        std::string msg = "kernel WireGuard: " + what_ + ": " + errno_text(error);
        if (error == EOPNOTSUPP) msg += " (not a kernel WireGuard interface?)";
        if (!text.empty()) msg += " (kernel: " + text + ")";
        throw WgError(msg);
    }

    // libmnl's iteration macros do not compile as C++; the same walk, with mnl_attr_ok
    // bounding every attribute by what is left of its container, and leftover bytes
    // (a truncated or zero-length attribute) rejected instead of ignored.
    template <typename Fn>
    void walk(const void* start, std::size_t len, const char* where, Fn&& fn) const {
        const auto* attr = static_cast<const nlattr*>(start);
        int remaining = static_cast<int>(len);
        while (mnl_attr_ok(attr, remaining)) {
            fn(attr);
            remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
            attr = mnl_attr_next(attr);
        }
        if (remaining > 0) malformed(std::string("truncated or invalid attribute in ") + where);
    }
    template <typename Fn>
    void walk_nested(const nlattr* nest, const char* name, Fn&& fn) const {
        walk(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), name,
             std::forward<Fn>(fn));
    }

    const uint8_t* exact(const nlattr* a, std::size_t n, const char* name) const {
        std::size_t got = mnl_attr_get_payload_len(a);
        if (got != n)
            malformed(std::string(name) + " has " + std::to_string(got) + " bytes, expected " +
                      std::to_string(n));
        return static_cast<const uint8_t*>(mnl_attr_get_payload(a));
    }
    // memcpy: a u64 payload is only 4-byte aligned in the datagram.
    template <typename T>
    T get(const nlattr* a, const char* name) const {
        T v;
        std::memcpy(&v, exact(a, sizeof v, name), sizeof v);
        return v;
    }
    WgKey key(const nlattr* a, const char* name) const {
        WgKey k;
        std::memcpy(k.bytes.data(), exact(a, k.bytes.size(), name), k.bytes.size());
        return k;
    }
    void string(const nlattr* a, std::size_t max, const char* name) const {
        std::size_t len = mnl_attr_get_payload_len(a);
        const char* s = static_cast<const char*>(mnl_attr_get_payload(a));
        if (len == 0 || len > max || s[len - 1] != '\0')
            malformed(std::string(name) + " is not a NUL-terminated string of at most " +
                      std::to_string(max) + " bytes");
    }

    // An NLMSG_ERROR: returns normally for an ack (error 0), throws otherwise.
    void error_message(const nlmsghdr* nlh) const {
        std::size_t payload = mnl_nlmsg_get_payload_len(nlh);
        if (payload < sizeof(nlmsgerr)) malformed("NLMSG_ERROR shorter than struct nlmsgerr");
        nlmsgerr err;
        std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
        if (err.error == 0) return;
        const int error = netlink_errno(err.error);
        if (error == 0)
            malformed("NLMSG_ERROR carries " + std::to_string(err.error) + ", not an errno");
        std::string text;
        if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
            // The TLVs follow the echoed request, which is only its header when capped.
            std::size_t offset = sizeof(nlmsgerr);
            if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && err.msg.nlmsg_len > sizeof(nlmsghdr))
                offset += MNL_ALIGN(err.msg.nlmsg_len - sizeof(nlmsghdr));
            if (offset < payload) text = extack_text(nlh, offset);
        }
        kernel_error(error, text);
    }
    // NLMSG_DONE carries 0, or the negative errno of a dump that failed part-way.
    void done_message(const nlmsghdr* nlh) const {
        std::size_t payload = mnl_nlmsg_get_payload_len(nlh);
        if (payload < sizeof(int)) malformed("NLMSG_DONE without its status");
        int status;
        std::memcpy(&status, mnl_nlmsg_get_payload(nlh), sizeof status);
        if (status == 0) return;
        const int error = netlink_errno(status);
        if (error == 0)
            malformed("NLMSG_DONE carries " + std::to_string(status) + ", not an errno");
        std::string text;
        if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) && payload > MNL_ALIGN(sizeof(int)))
            text = extack_text(nlh, MNL_ALIGN(sizeof(int)));
        kernel_error(error, text);
    }

    // Calls fn for each message of a datagram after checking its sequence number and
    // port; fn returns false to stop (end of the reply).
    template <typename Fn>
    void messages(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid, Fn&& fn) const {
        std::vector<uint8_t> copy;
        const void* data = mnl_readable(datagram, copy);
        const auto* nlh = static_cast<const nlmsghdr*>(data);
        int remaining = static_cast<int>(datagram.size());
        while (nlmsg_fits(nlh, remaining)) {
            if (seq != 0 && nlh->nlmsg_seq != seq)
                malformed("message with sequence number " + std::to_string(nlh->nlmsg_seq) +
                          ", expected " + std::to_string(seq));
            if (portid != 0 && nlh->nlmsg_pid != portid)
                malformed("message for port " + std::to_string(nlh->nlmsg_pid) + ", expected " +
                          std::to_string(portid));
            if (nlh->nlmsg_type == NLMSG_OVERRUN) malformed("NLMSG_OVERRUN (data lost)");
            if (nlh->nlmsg_type != NLMSG_NOOP && !fn(nlh)) return;
            nlh = mnl_nlmsg_next(nlh, &remaining);
        }
        if (remaining > 0) malformed("truncated netlink message");
    }

    // The generic netlink payload of a data message, after checking its header.
    std::span<const uint8_t> genl_attrs(const nlmsghdr* nlh, uint8_t cmd) const {
        std::size_t len = mnl_nlmsg_get_payload_len(nlh);
        if (len < GENL_HDRLEN) malformed("generic netlink message without its header");
        const auto* p = static_cast<const uint8_t*>(mnl_nlmsg_get_payload(nlh));
        if (p[0] != cmd)
            malformed("command " + std::to_string(p[0]) + ", expected " + std::to_string(cmd));
        return {p + GENL_HDRLEN, len - GENL_HDRLEN};
    }

  private:
    std::string extack_text(const nlmsghdr* nlh, std::size_t offset) const {
        std::string text;
        const auto* p = static_cast<const uint8_t*>(mnl_nlmsg_get_payload(nlh)) + offset;
        walk(p, mnl_nlmsg_get_payload_len(nlh) - offset, "the extended ack", [&](const nlattr* a) {
            if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
                mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
                text = mnl_attr_get_str(a);
        });
        return text;
    }

    std::string what_;
};

IpPrefix masked_prefix(int family, const uint8_t* addr, std::size_t addr_len, uint8_t len) {
    IpPrefix p;
    p.addr.family = family;
    std::memcpy(p.addr.bytes.data(), addr, addr_len);
    p.len = len;
    // The kernel stores prefixes masked; clearing host bits anyway keeps IpPrefix's
    // invariant whatever the reply says.
    for (std::size_t i = 0; i < addr_len; ++i) {
        int bits = static_cast<int>(len) - static_cast<int>(i) * 8;
        if (bits >= 8) continue;
        p.addr.bytes[i] &= bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    }
    return p;
}

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

void check_ifname(std::string_view ifname) {
    if (ifname.empty() || ifname.size() >= IFNAMSIZ || ifname.find('\0') != std::string_view::npos)
        throw WgError("kernel WireGuard: invalid interface name '" + std::string(ifname) + "'");
}

// --- The socket ---

struct Socket {
    mnl_socket* nl = nullptr;
    uint32_t portid = 0;
};

Socket open_genl_socket(std::chrono::milliseconds timeout) {
    mnl_socket* nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
    if (!nl)
        throw WgError("kernel WireGuard: opening a generic netlink socket: " + errno_text(errno));
    if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
        int e = errno;
        mnl_socket_close(nl);
        throw WgError("kernel WireGuard: binding the generic netlink socket: " + errno_text(e));
    }
    // Best effort (older kernels lack them): the kernel's own reason for an error, and
    // acks that do not echo a whole 32 KiB request back.
    int one = 1;
    mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof one);
    mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof one);
    // A kernel that never answers must not hang the agent.
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return {nl, mnl_socket_get_portid(nl)};
}

void send_message(mnl_socket* nl, const void* msg, std::size_t len, const std::string& what) {
    if (mnl_socket_sendto(nl, msg, len) < 0)
        throw WgError("kernel WireGuard: " + what + ": sending: " + errno_text(errno));
}

std::size_t receive_into(mnl_socket* nl, std::vector<uint8_t>& buf, const std::string& what) {
    while (true) {
        ssize_t n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
        if (n >= 0) return static_cast<std::size_t>(n);
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            throw WgError("kernel WireGuard: " + what + ": no reply from the kernel (timed out)");
        throw WgError("kernel WireGuard: " + what + ": receiving: " + errno_text(errno));
    }
}

// CTRL_CMD_GETFAMILY for "wireguard". The kernel loads the module on this request if it
// can; ENOENT means it has none.
uint16_t resolve_family(mnl_socket* nl, uint32_t portid, uint32_t seq, std::vector<uint8_t>& buf) {
    const std::string what = "resolving the generic netlink family";
    alignas(nlmsghdr) uint8_t req[256] = {};
    nlmsghdr* nlh = mnl_nlmsg_put_header(req);
    nlh->nlmsg_type = GENL_ID_CTRL;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    nlh->nlmsg_seq = seq;
    auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
    genl->cmd = CTRL_CMD_GETFAMILY;
    genl->version = 1;
    mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
    send_message(nl, nlh, nlh->nlmsg_len, what);

    while (true) {
        std::size_t n = receive_into(nl, buf, what);
        if (auto id = decode_family_reply({buf.data(), n}, seq, portid)) return *id;
    }
}

}  // namespace

// --- Decoding ---

GetDeviceDecoder::GetDeviceDecoder(uint16_t family_id, uint32_t seq, uint32_t portid,
                                   std::string what)
    : family_id_(family_id), seq_(seq), portid_(portid), what_(std::move(what)) {}

bool GetDeviceDecoder::feed(std::span<const uint8_t> datagram) {
    if (done_) return true;
    Reader r(what_);
    r.messages(datagram, seq_, portid_, [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) interrupted_ = true;
        if (nlh->nlmsg_type == NLMSG_ERROR) {
            r.error_message(nlh);
            r.malformed("an ack inside the device dump");
        }
        if (nlh->nlmsg_type == NLMSG_DONE) {
            r.done_message(nlh);
            done_ = true;
            return false;
        }
        if (nlh->nlmsg_type != family_id_)
            r.malformed("unexpected message type " + std::to_string(nlh->nlmsg_type));
        auto attrs = r.genl_attrs(nlh, WG_CMD_GET_DEVICE);
        data_message(attrs.data(), attrs.size());
        return true;
    });
    return done_;
}

void GetDeviceDecoder::data_message(const void* payload, std::size_t len) {
    Reader r(what_);
    bool first_peer = true;
    r.walk(payload, len, "WG_CMD_GET_DEVICE", [&](const nlattr* a) {
        switch (mnl_attr_get_type(a)) {
            case WGDEVICE_A_IFINDEX:
                r.get<uint32_t>(a, "WGDEVICE_A_IFINDEX");
                break;
            case WGDEVICE_A_IFNAME:
                r.string(a, IFNAMSIZ, "WGDEVICE_A_IFNAME");
                break;
            case WGDEVICE_A_PRIVATE_KEY:
                device_.private_key = r.key(a, "WGDEVICE_A_PRIVATE_KEY");
                break;
            case WGDEVICE_A_PUBLIC_KEY:
                r.key(a, "WGDEVICE_A_PUBLIC_KEY");
                break;
            case WGDEVICE_A_LISTEN_PORT:
                device_.listen_port = r.get<uint16_t>(a, "WGDEVICE_A_LISTEN_PORT");
                break;
            case WGDEVICE_A_FWMARK:
                device_.fwmark = r.get<uint32_t>(a, "WGDEVICE_A_FWMARK");
                break;
            case WGDEVICE_A_PEERS:
                r.walk_nested(a, "WGDEVICE_A_PEERS", [&](const nlattr* entry) {
                    peer(mnl_attr_get_payload(entry), mnl_attr_get_payload_len(entry), first_peer);
                    first_peer = false;
                });
                break;
            default:  // attributes of newer kernels
                break;
        }
    });
}

void GetDeviceDecoder::peer(const void* payload, std::size_t len, bool first_in_message) {
    Reader r(what_);
    WgPeer p;
    bool have_key = false;
    r.walk(payload, len, "a WGDEVICE_A_PEERS entry", [&](const nlattr* a) {
        switch (mnl_attr_get_type(a)) {
            case WGPEER_A_PUBLIC_KEY:
                p.public_key = r.key(a, "WGPEER_A_PUBLIC_KEY");
                have_key = true;
                break;
            case WGPEER_A_PRESHARED_KEY: {
                WgKey k = r.key(a, "WGPEER_A_PRESHARED_KEY");
                if (!k.is_zero()) p.preshared_key = k;  // all zero: none
                break;
            }
            case WGPEER_A_ENDPOINT: {
                std::size_t n = mnl_attr_get_payload_len(a);
                sa_family_t fam = AF_UNSPEC;
                if (n >= sizeof fam) std::memcpy(&fam, mnl_attr_get_payload(a), sizeof fam);
                if (!((fam == AF_INET && n == sizeof(sockaddr_in)) ||
                      (fam == AF_INET6 && n == sizeof(sockaddr_in6))))
                    r.malformed("WGPEER_A_ENDPOINT of " + std::to_string(n) +
                                " bytes with address family " + std::to_string(fam) +
                                " is neither sockaddr_in nor sockaddr_in6");
                SockAddr ep;
                std::memcpy(&ep.ss, mnl_attr_get_payload(a), n);
                ep.len = static_cast<socklen_t>(n);
                p.endpoint = ep;
                break;
            }
            case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
                p.persistent_keepalive =
                    r.get<uint16_t>(a, "WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL");
                break;
            case WGPEER_A_LAST_HANDSHAKE_TIME:
                p.last_handshake_sec =
                    r.get<__kernel_timespec>(a, "WGPEER_A_LAST_HANDSHAKE_TIME").tv_sec;
                break;
            case WGPEER_A_RX_BYTES:
                p.rx_bytes = r.get<uint64_t>(a, "WGPEER_A_RX_BYTES");
                break;
            case WGPEER_A_TX_BYTES:
                p.tx_bytes = r.get<uint64_t>(a, "WGPEER_A_TX_BYTES");
                break;
            case WGPEER_A_PROTOCOL_VERSION:
                r.get<uint32_t>(a, "WGPEER_A_PROTOCOL_VERSION");
                break;
            case WGPEER_A_ALLOWEDIPS:
                r.walk_nested(a, "WGPEER_A_ALLOWEDIPS", [&](const nlattr* entry) {
                    p.allowed_ips.push_back(allowed_ip(entry));
                });
                break;
            default:
                break;
        }
    });
    if (!have_key) r.malformed("a peer without WGPEER_A_PUBLIC_KEY");
    // A peer with more allowed IPs than fit one message continues as the first peer of
    // the next, with only its key and the rest of its allowed IPs.
    if (first_in_message && !device_.peers.empty() &&
        device_.peers.back().public_key == p.public_key) {
        auto& ips = device_.peers.back().allowed_ips;
        ips.insert(ips.end(), p.allowed_ips.begin(), p.allowed_ips.end());
        return;
    }
    if (!seen_.insert(p.public_key).second)
        r.malformed("peer " + p.public_key.base64() + " appears twice");
    device_.peers.push_back(std::move(p));
}

IpPrefix GetDeviceDecoder::allowed_ip(const nlattr* entry) const {
    Reader r(what_);
    std::optional<uint16_t> family;
    std::optional<uint8_t> cidr;
    const nlattr* addr = nullptr;
    r.walk_nested(entry, "a WGPEER_A_ALLOWEDIPS entry", [&](const nlattr* a) {
        switch (mnl_attr_get_type(a)) {
            case WGALLOWEDIP_A_FAMILY:
                family = r.get<uint16_t>(a, "WGALLOWEDIP_A_FAMILY");
                break;
            case WGALLOWEDIP_A_IPADDR:
                addr = a;
                break;
            case WGALLOWEDIP_A_CIDR_MASK:
                cidr = r.get<uint8_t>(a, "WGALLOWEDIP_A_CIDR_MASK");
                break;
            default:
                break;
        }
    });
    if (!family || !addr || !cidr)
        r.malformed(std::string("an allowed IP without ") + (!family ? "WGALLOWEDIP_A_FAMILY"
                                                             : !addr ? "WGALLOWEDIP_A_IPADDR"
                                                                     : "WGALLOWEDIP_A_CIDR_MASK"));
    if (*family != AF_INET && *family != AF_INET6)
        r.malformed("WGALLOWEDIP_A_FAMILY " + std::to_string(*family) + " is not IPv4 or IPv6");
    const std::size_t n = *family == AF_INET ? 4 : 16;
    const uint8_t* bytes = r.exact(addr, n, "WGALLOWEDIP_A_IPADDR");
    const uint8_t max = *family == AF_INET ? 32 : 128;
    if (*cidr > max)
        r.malformed("WGALLOWEDIP_A_CIDR_MASK " + std::to_string(*cidr) + " exceeds " +
                    std::to_string(max));
    return masked_prefix(*family, bytes, n, *cidr);
}

WgDevice parse_get_device_messages(std::span<const std::vector<uint8_t>> datagrams,
                                   uint16_t family_id, uint32_t seq, uint32_t portid) {
    GetDeviceDecoder d(family_id, seq, portid);
    for (const auto& dg : datagrams)
        if (d.feed(dg)) break;
    if (!d.done())
        throw WgError("kernel WireGuard: reading the device: dump ended without NLMSG_DONE");
    if (d.interrupted())
        throw WgError("kernel WireGuard: reading the device: dump interrupted (NLM_F_DUMP_INTR)");
    return d.take();
}

std::optional<uint16_t> decode_family_reply(std::span<const uint8_t> datagram, uint32_t seq,
                                            uint32_t portid) {
    Reader r("resolving the generic netlink family");
    std::optional<uint16_t> id;
    r.messages(datagram, seq, portid, [&](const nlmsghdr* m) {
        if (m->nlmsg_type == NLMSG_ERROR) {
            // ENOENT: the kernel has no such family. Read only from a whole nlmsgerr;
            // error_message() names a shorter one.
            nlmsgerr err;
            if (mnl_nlmsg_get_payload_len(m) >= sizeof err) {
                std::memcpy(&err, mnl_nlmsg_get_payload(m), sizeof err);
                if (err.error == -ENOENT)
                    throw WgError(
                        "kernel WireGuard is not available (no 'wireguard' generic netlink "
                        "family)");
            }
            r.error_message(m);
            r.malformed("an ack instead of the family");
        }
        if (m->nlmsg_type != GENL_ID_CTRL) r.malformed("unexpected message type");
        auto attrs = r.genl_attrs(m, CTRL_CMD_NEWFAMILY);
        uint16_t found = 0;
        r.walk(attrs.data(), attrs.size(), "the family reply", [&](const nlattr* a) {
            if (mnl_attr_get_type(a) == CTRL_ATTR_FAMILY_ID)
                found = r.get<uint16_t>(a, "CTRL_ATTR_FAMILY_ID");
        });
        if (found == 0) r.malformed("no CTRL_ATTR_FAMILY_ID");
        id = found;
        return false;
    });
    return id;
}

bool decode_ack(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid,
                const std::string& what) {
    Reader r(what);
    bool acked = false;
    r.messages(datagram, seq, portid, [&](const nlmsghdr* m) {
        if (m->nlmsg_type != NLMSG_ERROR)
            r.malformed("message type " + std::to_string(m->nlmsg_type) + " instead of the ack");
        r.error_message(m);
        acked = true;
        return false;
    });
    return acked;
}

// --- Encoding ---

std::vector<std::vector<uint8_t>> build_set_device_messages(std::string_view ifname,
                                                            const DeviceUpdate& update,
                                                            uint16_t family_id, uint32_t first_seq,
                                                            std::size_t max_msg) {
    check_ifname(ifname);
    return SetBuilder(ifname, family_id, first_seq, std::max(max_msg, kWgNetlinkMinMessageSize))
        .build(update);
}

std::vector<uint8_t> build_get_device_request(std::string_view ifname, uint16_t family_id,
                                              uint32_t seq) {
    check_ifname(ifname);
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

// --- NetlinkControl ---

void NetlinkControl::SocketCloser::operator()(mnl_socket* s) const {
    mnl_socket_close(s);
}

NetlinkControl::NetlinkControl(std::string interface)
    : interface_(std::move(interface)),
      netns_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)),
      buf_(kRecvBuffer) {
    check_ifname(interface_);
    if (netns_.get() < 0)
        throw WgError("kernel WireGuard: opening this thread's network namespace: " +
                      errno_text(errno));
    open_socket();
    family_id_ = resolve_family(nl_.get(), portid_, next_seq(), buf_);
}

NetlinkControl::~NetlinkControl() = default;

void NetlinkControl::open_socket() {
    struct stat want {
    }, here{};
    if (fstat(netns_.get(), &want) != 0 || stat("/proc/thread-self/ns/net", &here) != 0)
        throw WgError("kernel WireGuard: reading network namespaces: " + errno_text(errno));
    Socket s;
    if (want.st_ino == here.st_ino && want.st_dev == here.st_dev) {
        s = open_genl_socket(timeout_);
    } else {
        // A netlink socket belongs to the namespace it is created in: enter the
        // control's namespace for the socket() call only.
        UniqueFd back(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
        if (back.get() < 0 || setns(netns_.get(), CLONE_NEWNET) != 0)
            throw WgError("kernel WireGuard: entering the device's network namespace: " +
                          errno_text(errno));
        std::exception_ptr failure;
        try {
            s = open_genl_socket(timeout_);
        } catch (...) {
            failure = std::current_exception();
        }
        // Leaving this thread in the wrong namespace would silently misdirect all its
        // later network calls.
        if (setns(back.get(), CLONE_NEWNET) != 0) {
            std::fputs("nbagent: cannot return to the network namespace it was in\n", stderr);
            std::abort();
        }
        if (failure) std::rethrow_exception(failure);
    }
    nl_.reset(s.nl);
    portid_ = s.portid;
}

void NetlinkControl::set_timeout(std::chrono::milliseconds timeout) {
    timeout_ = timeout;
    nl_.reset();  // reopened with the new timeout on the next call
}

void NetlinkControl::set_max_message_size(std::size_t bytes) {
    max_msg_ = std::clamp(bytes, kWgNetlinkMinMessageSize, kMaxMessageSize);
}

std::size_t NetlinkControl::receive(const std::string& what) {
    return receive_into(nl_.get(), buf_, what);
}

WgDevice NetlinkControl::get_device() {
    const std::string what = "reading device " + interface_;
    for (int attempt = 1;; ++attempt) {
        // A failed exchange may leave replies queued; a fresh socket cannot mix them in.
        if (!nl_) open_socket();
        try {
            uint32_t seq = next_seq();
            auto req = build_get_device_request(interface_, family_id_, seq);
            send_message(nl_.get(), req.data(), req.size(), what);
            GetDeviceDecoder decoder(family_id_, seq, portid_, what);
            while (!decoder.feed({buf_.data(), receive(what)})) {
            }
            if (!decoder.interrupted()) return decoder.take();
            ++interrupted_dumps_;
        } catch (...) {
            nl_.reset();
            throw;
        }
        if (attempt == kDumpAttempts)
            throw WgError("kernel WireGuard: " + what + ": the device changed during each of " +
                          std::to_string(kDumpAttempts) + " dumps (NLM_F_DUMP_INTR)");
    }
}

void NetlinkControl::transact_ack(const std::vector<uint8_t>& msg, const std::string& what) {
    send_message(nl_.get(), msg.data(), msg.size(), what);
    nlmsghdr hdr;
    std::memcpy(&hdr, msg.data(), sizeof hdr);
    while (!decode_ack({buf_.data(), receive(what)}, hdr.nlmsg_seq, portid_, what)) {
    }
}

void NetlinkControl::set_device(const DeviceUpdate& update) {
    if (!nl_) open_socket();
    auto msgs = build_set_device_messages(interface_, update, family_id_, seq_ + 1, max_msg_);
    seq_ += static_cast<uint32_t>(msgs.size());
    try {
        for (std::size_t i = 0; i < msgs.size(); ++i) {
            std::string what = "setting device " + interface_;
            if (msgs.size() > 1)
                what += " (batch " + std::to_string(i + 1) + " of " + std::to_string(msgs.size()) +
                        "; earlier batches are applied)";
            transact_ack(msgs[i], what);
        }
    } catch (...) {
        nl_.reset();
        throw;
    }
}

bool kernel_wireguard_available() {
    try {
        Socket s = open_genl_socket(std::chrono::milliseconds(5000));
        std::unique_ptr<mnl_socket, void (*)(mnl_socket*)> owner(
            s.nl, [](mnl_socket* nl) { mnl_socket_close(nl); });
        std::vector<uint8_t> buf(kRecvBuffer);
        resolve_family(s.nl, s.portid, 1, buf);
        return true;
    } catch (const WgError&) {
        return false;
    }
}

}  // namespace nb
