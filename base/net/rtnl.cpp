#include "base/net/rtnl.hpp"

#include "base/net/nl_attrs.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <net/if.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <vector>

#include "base/blocking.hpp"
#include "base/net/rtnl_reply.hpp"

namespace nb {

namespace {

// Dump replies come in skbs of up to 32 KiB; a larger buffer never truncates one.
constexpr std::size_t kRecvBuffer = 65536;

std::string hint_for(int error) {
    switch (error) {
        case ESRCH:
            return " (no such route)";
        case EADDRNOTAVAIL:
            return " (no such address)";
        default:
            return "";
    }
}

class RtnlSocket {
  public:
    explicit RtnlSocket(std::string what) : what_(std::move(what)) {
        nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (!nl_) fail_errno("opening the rtnetlink socket", errno);
        if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) {
            int e = errno;
            mnl_socket_close(nl_);
            fail_errno("binding the rtnetlink socket", e);
        }
        // Extended acks give the kernel's own reason; capped acks keep errors small.
        // Both are best effort (older kernels lack them).
        int one = 1;
        mnl_socket_setsockopt(nl_, NETLINK_EXT_ACK, &one, sizeof one);
        mnl_socket_setsockopt(nl_, NETLINK_CAP_ACK, &one, sizeof one);
        timeval tv{5, 0};  // a wedged kernel reply must not hang the agent
        setsockopt(mnl_socket_get_fd(nl_), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        portid_ = mnl_socket_get_portid(nl_);
    }
    RtnlSocket(const RtnlSocket&) = delete;
    RtnlSocket& operator=(const RtnlSocket&) = delete;
    ~RtnlSocket() { mnl_socket_close(nl_); }

    // Sends the request and processes replies until the ack or the end of the dump.
    // Returns 0 or the kernel's errno if it is in `tolerated`; throws otherwise.
    int run(nlmsghdr* nlh, std::function<void(const nlmsghdr*)> on_data = {},
            std::initializer_list<int> tolerated = {}) {
        BlockingTimer waiting(BlockingKind::Rtnetlink);
        nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = ++seq_ + static_cast<uint32_t>(std::time(nullptr));
        if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0) fail_errno("sending", errno);

        std::vector<uint8_t> buf(kRecvBuffer);
        while (true) {
            ssize_t n = mnl_socket_recvfrom(nl_, buf.data(), buf.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                fail_errno("waiting for the kernel's reply", ETIMEDOUT);
            if (n < 0) fail_errno("receiving", errno);
            RtnlReplyStatus st = decode_rtnl_reply({buf.data(), static_cast<std::size_t>(n)},
                                                   nlh->nlmsg_seq, portid_, on_data);
            if (st.state == RtnlReplyStatus::State::Done) return 0;
            if (st.state == RtnlReplyStatus::State::More) continue;
            if (!st.from_kernel) fail_errno("processing the reply", st.error);
            for (int t : tolerated)
                if (t == st.error) return st.error;
            std::string msg =
                "rtnetlink: " + what_ + ": " + std::strerror(st.error) + hint_for(st.error);
            if (!st.kernel_text.empty()) msg += " (kernel: " + st.kernel_text + ")";
            throw NetlinkError(msg, st.error);
        }
    }

    [[noreturn]] void fail_errno(const std::string& step, int e) const {
        throw NetlinkError("rtnetlink: " + what_ + ": " + step + ": " + std::strerror(e), e);
    }

  private:
    std::string what_;
    mnl_socket* nl_ = nullptr;
    unsigned portid_ = 0;
    uint32_t seq_ = 0;
};

int require_index(const std::string& name, const std::string& what) {
    auto idx = link_index(name);
    if (!idx) throw NetlinkError("rtnetlink: " + what + ": no link named '" + name + "'", ENODEV);
    return *idx;
}

int prefix_family(const IpPrefix& p, const std::string& what) {
    if ((p.addr.family != AF_INET && p.addr.family != AF_INET6) || p.len > p.addr.max_prefix())
        throw NetlinkError("rtnetlink: " + what + ": not a valid IPv4/IPv6 prefix", EINVAL);
    return p.addr.family;
}

std::size_t addr_bytes(int family) {
    return family == AF_INET ? 4 : 16;
}

// A request buffer sized for any of the small messages built here.
struct Request {
    alignas(nlmsghdr) char buf[8192] = {};
    nlmsghdr* nlh;
    explicit Request(uint16_t type, uint16_t flags = 0) {
        nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
    }
};

void link_change(const std::string& name, const std::string& what,
                 const std::function<void(nlmsghdr*, ifinfomsg*)>& fill) {
    int idx = require_index(name, what);
    Request req(RTM_NEWLINK);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = idx;
    fill(req.nlh, ifi);
    RtnlSocket(what).run(req.nlh);
}

void route_request(uint16_t type, uint16_t flags, const std::string& name, const IpPrefix& dst,
                   uint32_t table, const std::string& what, std::initializer_list<int> tolerated) {
    int family = prefix_family(dst, what);
    int idx = require_index(name, what);
    Request req(type, flags);
    auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(rtmsg)));
    rtm->rtm_family = static_cast<unsigned char>(family);
    rtm->rtm_dst_len = dst.len;
    rtm->rtm_table = static_cast<unsigned char>(table < 256 ? table : RT_TABLE_UNSPEC);
    rtm->rtm_protocol = type == RTM_DELROUTE ? RTPROT_UNSPEC : kNbRouteProtocol;
    // As iproute2: a device route is link-scoped; a delete matches any scope.
    rtm->rtm_scope = type == RTM_DELROUTE ? RT_SCOPE_NOWHERE : RT_SCOPE_LINK;
    rtm->rtm_type = RTN_UNICAST;
    if (dst.len > 0) mnl_attr_put(req.nlh, RTA_DST, addr_bytes(family), dst.addr.bytes.data());
    mnl_attr_put_u32(req.nlh, RTA_OIF, static_cast<uint32_t>(idx));
    mnl_attr_put_u32(req.nlh, RTA_TABLE, table);
    RtnlSocket(what).run(req.nlh, {}, tolerated);
}

}  // namespace

std::optional<int> link_index(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ) return std::nullopt;
    unsigned idx = if_nametoindex(name.c_str());
    if (idx == 0) return std::nullopt;
    return static_cast<int>(idx);
}

void link_set_up(const std::string& name) {
    link_change(name, "setting link " + name + " up", [](nlmsghdr*, ifinfomsg* ifi) {
        ifi->ifi_flags = IFF_UP;
        ifi->ifi_change = IFF_UP;
    });
}

void link_set_mtu(const std::string& name, uint32_t mtu) {
    link_change(name, "setting MTU " + std::to_string(mtu) + " on " + name,
                [mtu](nlmsghdr* nlh, ifinfomsg*) { mnl_attr_put_u32(nlh, IFLA_MTU, mtu); });
}

void link_set_txqueuelen(const std::string& name, uint32_t len) {
    link_change(name, "setting txqueuelen " + std::to_string(len) + " on " + name,
                [len](nlmsghdr* nlh, ifinfomsg*) { mnl_attr_put_u32(nlh, IFLA_TXQLEN, len); });
}

void link_add_wireguard(const std::string& name) {
    const std::string what = "creating WireGuard link " + name;
    if (name.empty() || name.size() >= IFNAMSIZ)
        throw NetlinkError("rtnetlink: " + what + ": invalid interface name", EINVAL);
    Request req(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    mnl_attr_put_strz(req.nlh, IFLA_IFNAME, name.c_str());
    nlattr* info = mnl_attr_nest_start(req.nlh, IFLA_LINKINFO);
    mnl_attr_put_strz(req.nlh, IFLA_INFO_KIND, "wireguard");
    mnl_attr_nest_end(req.nlh, info);
    try {
        RtnlSocket(what).run(req.nlh);
    } catch (const NetlinkError& e) {
        // The kernel says only "not supported" when the wireguard module is missing.
        if (e.error_code == EOPNOTSUPP || e.error_code == ENOENT)
            throw NetlinkError(
                std::string(e.what()) + "; this kernel has no WireGuard module (use wireguard-go)",
                e.error_code);
        throw;
    }
}

void link_delete(const std::string& name) {
    const std::string what = "deleting link " + name;
    int idx = require_index(name, what);
    Request req(RTM_DELLINK);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = idx;
    RtnlSocket(what).run(req.nlh);
}

std::string link_kind(const std::string& name) {
    const std::string what = "reading the kind of link " + name;
    int idx = require_index(name, what);
    Request req(RTM_GETLINK);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = idx;

    std::string kind;
    RtnlSocket(what).run(req.nlh, [&](const nlmsghdr* nlh) {
        if (auto k = decode_link_kind(nlh, what)) kind = std::move(*k);
    });
    return kind;
}

void addr_add(const std::string& name, const IpPrefix& addr_with_len) {
    const std::string what = "adding address " + addr_with_len.str() + " to " + name;
    int family = prefix_family(addr_with_len, what);
    int idx = require_index(name, what);
    Request req(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = static_cast<unsigned char>(family);
    ifa->ifa_prefixlen = addr_with_len.len;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    ifa->ifa_index = static_cast<unsigned>(idx);
    const uint8_t* bytes = addr_with_len.addr.bytes.data();
    mnl_attr_put(req.nlh, IFA_LOCAL, addr_bytes(family), bytes);
    mnl_attr_put(req.nlh, IFA_ADDRESS, addr_bytes(family), bytes);
    RtnlSocket(what).run(req.nlh, {}, {EEXIST});
}

std::vector<IpPrefix> addr_list(const std::string& name) {
    const std::string what = "listing addresses of " + name;
    int idx = require_index(name, what);
    Request req(RTM_GETADDR, NLM_F_DUMP);
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;

    std::vector<IpPrefix> out;
    auto on_addr = [&](const nlmsghdr* nlh) {
        if (auto p = decode_addr_message(nlh, idx, what)) out.push_back(*p);
    };
    // A dump is restarted by the kernel's request when addresses change during it.
    for (int attempt = 1;; ++attempt) {
        try {
            out.clear();
            RtnlSocket(what).run(req.nlh, on_addr);
            return out;
        } catch (const NetlinkError& e) {
            if (e.error_code != EINTR || attempt == 3) throw;
        }
    }
}

void route_add(const std::string& name, const IpPrefix& dst, uint32_t table) {
    route_request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, name, dst, table,
                  "adding route " + dst.str() + " dev " + name + " table " + std::to_string(table),
                  {EEXIST});
}

void route_del(const std::string& name, const IpPrefix& dst, uint32_t table) {
    route_request(
        RTM_DELROUTE, 0, name, dst, table,
        "deleting route " + dst.str() + " dev " + name + " table " + std::to_string(table), {});
}

std::vector<LinkRoute> route_list(const std::string& name, uint32_t table) {
    const std::string what = "listing routes via " + name;
    const int idx = require_index(name, what);
    std::vector<LinkRoute> out;
    auto on_route = [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(nlh) < sizeof(rtmsg))
            throw NetlinkError("rtnetlink: " + what + ": malformed route message", 0);
        const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
        if (rtm->rtm_type != RTN_UNICAST) return;
        if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) return;
        const std::size_t len = addr_bytes(rtm->rtm_family);
        uint32_t rt_table = rtm->rtm_table;
        uint32_t oif = 0;
        const nlattr* dst = nullptr;
        bool multipath = false;
        for_each_attr(nlh, sizeof(rtmsg), [&](const nlattr* attr) {
            switch (mnl_attr_get_type(attr)) {
                case RTA_TABLE:
                case RTA_OIF:
                    if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
                        throw NetlinkError("rtnetlink: " + what + ": malformed route attribute", 0);
                    (mnl_attr_get_type(attr) == RTA_TABLE ? rt_table : oif) =
                        mnl_attr_get_u32(attr);
                    break;
                case RTA_DST:
                    if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, len) < 0)
                        throw NetlinkError("rtnetlink: " + what + ": route RTA_DST of wrong size",
                                           0);
                    dst = attr;
                    break;
                case RTA_MULTIPATH:
                    multipath = true;
                    break;
                default:
                    break;
            }
        });
        // A multipath route also leads elsewhere: not ours to manage.
        if (multipath || rt_table != table || oif != static_cast<uint32_t>(idx)) return;
        if (rtm->rtm_dst_len > len * 8)
            throw NetlinkError("rtnetlink: " + what + ": prefix length out of range", 0);
        LinkRoute r;
        r.dst.addr.family = rtm->rtm_family;
        if (dst) std::memcpy(r.dst.addr.bytes.data(), mnl_attr_get_payload(dst), len);
        r.dst.len = rtm->rtm_dst_len;
        r.protocol = rtm->rtm_protocol;
        out.push_back(r);
    };
    for (int family : {AF_INET, AF_INET6}) {
        Request req(RTM_GETROUTE, NLM_F_DUMP);
        auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(rtmsg)));
        rtm->rtm_family = static_cast<unsigned char>(family);
        // A dump is restarted by the kernel's request when routes change during it.
        for (int attempt = 1;; ++attempt) {
            const size_t kept = out.size();
            try {
                RtnlSocket(what).run(req.nlh, on_route);
                break;
            } catch (const NetlinkError& e) {
                out.resize(kept);
                if (e.error_code != EINTR || attempt == 3) throw;
            }
        }
    }
    return out;
}

std::vector<TcFilter> tc_filter_list(int ifindex, bool ingress) {
    const std::string what = std::string("listing tc ") + (ingress ? "ingress" : "egress") +
                             " filters of ifindex " + std::to_string(ifindex);
    Request req(RTM_GETTFILTER, NLM_F_DUMP);
    auto* tcm = static_cast<tcmsg*>(mnl_nlmsg_put_extra_header(req.nlh, sizeof(tcmsg)));
    tcm->tcm_family = AF_UNSPEC;
    tcm->tcm_ifindex = ifindex;
    tcm->tcm_parent = TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);

    std::vector<TcFilter> out;
    auto on_filter = [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type != RTM_NEWTFILTER || mnl_nlmsg_get_payload_len(nlh) < sizeof(tcmsg))
            throw NetlinkError("rtnetlink: " + what + ": malformed filter message", 0);
        const auto* msg = static_cast<const tcmsg*>(mnl_nlmsg_get_payload(nlh));
        // Handle 0 is the line the kernel sends for each priority before its filters.
        if (msg->tcm_handle == 0) return;
        TcFilter f;
        f.priority = static_cast<uint16_t>(TC_H_MAJ(msg->tcm_info) >> 16);
        f.protocol = ntohs(static_cast<uint16_t>(TC_H_MIN(msg->tcm_info)));
        f.handle = msg->tcm_handle;
        uint32_t chain = 0;
        for_each_attr(nlh, sizeof(tcmsg), [&](const nlattr* attr) {
            switch (mnl_attr_get_type(attr)) {
                case TCA_KIND:
                    if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
                        f.kind = mnl_attr_get_str(attr);
                    break;
                case TCA_CHAIN:
                    if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) chain = mnl_attr_get_u32(attr);
                    break;
                case TCA_OPTIONS:
                    if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0) break;
                    for_each_nested(attr, [&](const nlattr* opt) {
                        // Only cls_bpf's options are read; other kinds number theirs alike.
                        if (mnl_attr_get_type(opt) == TCA_BPF_ID &&
                            mnl_attr_validate(opt, MNL_TYPE_U32) == 0)
                            f.bpf_id = mnl_attr_get_u32(opt);
                        if (mnl_attr_get_type(opt) == TCA_BPF_NAME &&
                            mnl_attr_validate(opt, MNL_TYPE_NUL_STRING) == 0)
                            f.bpf_name = mnl_attr_get_str(opt);
                    });
                    break;
                default:
                    break;
            }
        });
        if (f.kind != "bpf") {
            f.bpf_id = 0;
            f.bpf_name.clear();
        }
        // Other chains are entered only from a filter's goto_chain: not before ours.
        if (chain == 0) out.push_back(std::move(f));
    };
    for (int attempt = 1;; ++attempt) {
        try {
            out.clear();
            RtnlSocket(what).run(req.nlh, on_filter, {EINVAL, ENOENT});
            return out;
        } catch (const NetlinkError& e) {
            if (e.error_code != EINTR || attempt == 3) throw;
        }
    }
}

}  // namespace nb
