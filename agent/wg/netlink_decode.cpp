// Decoding WireGuard's generic netlink replies: the device dump, the family and acks.
#include "agent/wg/netlink_codec.hpp"

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/time_types.h>
#include <linux/wireguard.h>
#include <net/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/errno_text.hpp"
#include "base/net/netlink_checks.hpp"
#include "base/net/nl_attrs.hpp"

namespace nb {

namespace {

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

    // base/net's walk, with leftover bytes (a truncated or zero-length attribute)
    // rejected instead of ignored.
    template <typename Fn>
    void walk(const void* start, std::size_t len, const char* where, Fn&& fn) const {
        if (for_each_in(start, len, std::forward<Fn>(fn)) > 0)
            malformed(std::string("truncated or invalid attribute in ") + where);
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

// The attributes that are one fixed-size number kept in a field of the device or a peer:
// one table per nest instead of a case each, the name for the size check's error.
template <typename Owner>
struct NumberAttr {
    uint16_t type;
    const char* name;
    std::variant<uint16_t Owner::*, uint32_t Owner::*, uint64_t Owner::*> field;
};

constexpr NumberAttr<WgDevice> kDeviceNumbers[] = {
    {WGDEVICE_A_LISTEN_PORT, "WGDEVICE_A_LISTEN_PORT", &WgDevice::listen_port},
    {WGDEVICE_A_FWMARK, "WGDEVICE_A_FWMARK", &WgDevice::fwmark},
};

constexpr NumberAttr<WgPeer> kPeerNumbers[] = {
    {WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, "WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL",
     &WgPeer::persistent_keepalive},
    {WGPEER_A_RX_BYTES, "WGPEER_A_RX_BYTES", &WgPeer::rx_bytes},
    {WGPEER_A_TX_BYTES, "WGPEER_A_TX_BYTES", &WgPeer::tx_bytes},
};

// Stores `a` in its field if the table has it; any other attribute is left alone.
template <typename Owner, std::size_t N>
void store_number(const Reader& r, const nlattr* a, const NumberAttr<Owner> (&table)[N],
                  Owner& owner) {
    for (const auto& n : table) {
        if (mnl_attr_get_type(a) != n.type) continue;
        std::visit(
            [&](auto field) {
                owner.*field = r.get<std::remove_reference_t<decltype(owner.*field)>>(a, n.name);
            },
            n.field);
        return;
    }
}

// A WGPEER_A_ENDPOINT: a sockaddr_in or sockaddr_in6, nothing else.
SockAddr endpoint_of(const Reader& r, const nlattr* a) {
    std::size_t n = mnl_attr_get_payload_len(a);
    sa_family_t fam = AF_UNSPEC;
    if (n >= sizeof fam) std::memcpy(&fam, mnl_attr_get_payload(a), sizeof fam);
    if (!((fam == AF_INET && n == sizeof(sockaddr_in)) ||
          (fam == AF_INET6 && n == sizeof(sockaddr_in6))))
        r.malformed("WGPEER_A_ENDPOINT of " + std::to_string(n) + " bytes with address family " +
                    std::to_string(fam) + " is neither sockaddr_in nor sockaddr_in6");
    SockAddr ep;
    std::memcpy(&ep.ss, mnl_attr_get_payload(a), n);
    ep.len = static_cast<socklen_t>(n);
    return ep;
}

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
            case WGDEVICE_A_PEERS:
                r.walk_nested(a, "WGDEVICE_A_PEERS", [&](const nlattr* entry) {
                    peer(mnl_attr_get_payload(entry), mnl_attr_get_payload_len(entry), first_peer);
                    first_peer = false;
                });
                break;
            default:  // listen port and fwmark; others are attributes of newer kernels
                store_number(r, a, kDeviceNumbers, device_);
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
            case WGPEER_A_ENDPOINT:
                p.endpoint = endpoint_of(r, a);
                break;
            case WGPEER_A_LAST_HANDSHAKE_TIME:
                p.last_handshake_sec =
                    r.get<__kernel_timespec>(a, "WGPEER_A_LAST_HANDSHAKE_TIME").tv_sec;
                break;
            case WGPEER_A_PROTOCOL_VERSION:
                r.get<uint32_t>(a, "WGPEER_A_PROTOCOL_VERSION");
                break;
            case WGPEER_A_ALLOWEDIPS:
                r.walk_nested(a, "WGPEER_A_ALLOWEDIPS", [&](const nlattr* entry) {
                    p.allowed_ips.push_back(allowed_ip(entry));
                });
                break;
            default:  // keepalive and traffic counters; others are of newer kernels
                store_number(r, a, kPeerNumbers, p);
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

}  // namespace nb
