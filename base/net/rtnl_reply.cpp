#include "base/net/rtnl_reply.hpp"

#include "base/net/nl_attrs.hpp"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <vector>

#include "base/net/netlink_checks.hpp"

namespace nb {

namespace {

struct ErrorInfo {
    int error = 0;     // positive errno from NLMSG_ERROR / NLMSG_DONE
    std::string text;  // kernel extended-ack message, if any
};

int extack_attr_cb(const nlattr* attr, void* data) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
        static_cast<ErrorInfo*>(data)->text = mnl_attr_get_str(attr);
    return MNL_CB_OK;
}

int error_cb(const nlmsghdr* nlh, void* data) {
    auto* info = static_cast<ErrorInfo*>(data);
    if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr)) {
        info->error = EBADMSG;
        return MNL_CB_ERROR;
    }
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    if (err->error == 0) return MNL_CB_STOP;  // the ack
    // A status no kernel sends is as malformed as a short message.
    info->error = netlink_errno(err->error);
    if (info->error == 0) info->error = EBADMSG;
    if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
        // The TLVs follow the echoed request, which is only its header when capped.
        std::size_t offset = sizeof(nlmsgerr);
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
            std::size_t echoed = err->msg.nlmsg_len;
            offset += echoed > sizeof(nlmsghdr) ? echoed - sizeof(nlmsghdr) : 0;
        }
        if (offset <= mnl_nlmsg_get_payload_len(nlh))
            mnl_attr_parse(nlh, static_cast<unsigned>(offset), extack_attr_cb, info);
    }
    return MNL_CB_ERROR;
}

int done_cb(const nlmsghdr* nlh, void* data) {
    // A dump that failed part-way ends with NLMSG_DONE carrying the negative errno.
    if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
        int e = 0;
        std::memcpy(&e, mnl_nlmsg_get_payload(nlh), sizeof e);
        if (e < 0) {
            int error = netlink_errno(e);
            static_cast<ErrorInfo*>(data)->error = error != 0 ? error : EBADMSG;
            return MNL_CB_ERROR;
        }
    }
    return MNL_CB_STOP;
}

int noop_cb(const nlmsghdr*, void*) {
    return MNL_CB_OK;
}

int overrun_cb(const nlmsghdr*, void* data) {
    static_cast<ErrorInfo*>(data)->error = ENOBUFS;
    return MNL_CB_ERROR;
}

// What each data message is handed to; libmnl's C callbacks carry one void*.
struct Context {
    ErrorInfo info;
    const std::function<void(const nlmsghdr*)>* on_data = nullptr;
    std::exception_ptr failure;  // thrown by on_data; must not unwind through libmnl
};

int data_cb(const nlmsghdr* nlh, void* data) {
    auto* ctx = static_cast<Context*>(data);
    try {
        if (*ctx->on_data) (*ctx->on_data)(nlh);
    } catch (...) {
        ctx->failure = std::current_exception();
        return MNL_CB_ERROR;
    }
    return MNL_CB_OK;
}

int ctl_error_cb(const nlmsghdr* nlh, void* data) {
    return error_cb(nlh, &static_cast<Context*>(data)->info);
}
int ctl_done_cb(const nlmsghdr* nlh, void* data) {
    return done_cb(nlh, &static_cast<Context*>(data)->info);
}
int ctl_overrun_cb(const nlmsghdr* nlh, void* data) {
    return overrun_cb(nlh, &static_cast<Context*>(data)->info);
}

std::size_t addr_bytes(int family) {
    return family == AF_INET ? 4 : 16;
}

}  // namespace

RtnlReplyStatus decode_rtnl_reply(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid,
                                  const std::function<void(const nlmsghdr*)>& on_data) {
    std::vector<uint8_t> copy;
    const void* data = mnl_readable(datagram, copy);
    // Only whole messages go to libmnl, whose own walk trusts mnl_nlmsg_ok(); bytes after
    // them fail the reply below, as a truncated message, unless it ended before them.
    std::size_t whole = 0;
    while (whole < datagram.size()) {
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(static_cast<const char*>(data) + whole);
        if (!nlmsg_fits(nlh, static_cast<int>(datagram.size() - whole))) break;
        whole += std::min<std::size_t>(MNL_ALIGN(nlh->nlmsg_len), datagram.size() - whole);
    }
    Context ctx;
    ctx.on_data = &on_data;
    mnl_cb_t ctl[NLMSG_MIN_TYPE] = {};
    ctl[NLMSG_NOOP] = noop_cb;
    ctl[NLMSG_ERROR] = ctl_error_cb;
    ctl[NLMSG_DONE] = ctl_done_cb;
    ctl[NLMSG_OVERRUN] = ctl_overrun_cb;
    errno = 0;
    int r = mnl_cb_run2(data, whole, seq, portid, data_cb, &ctx, ctl, NLMSG_MIN_TYPE);
    int run_errno = errno;
    RtnlReplyStatus st;
    if (r == MNL_CB_STOP) {
        st.state = RtnlReplyStatus::State::Done;
        return st;
    }
    if (r == MNL_CB_OK && whole == datagram.size()) return st;
    if (r == MNL_CB_OK) {
        st.state = RtnlReplyStatus::State::Failed;
        st.error = EBADMSG;
        return st;
    }
    if (ctx.failure) std::rethrow_exception(ctx.failure);
    st.state = RtnlReplyStatus::State::Failed;
    st.from_kernel = ctx.info.error != 0;
    st.error = st.from_kernel ? ctx.info.error : run_errno;
    st.kernel_text = std::move(ctx.info.text);
    return st;
}

std::optional<std::string> decode_link_kind(const nlmsghdr* nlh, const std::string& what) {
    if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg))
        throw NetlinkError("rtnetlink: " + what + ": malformed link message", 0);
    std::optional<std::string> kind;
    for_each_attr(nlh, sizeof(ifinfomsg), [&](const nlattr* attr) {
        if (mnl_attr_get_type(attr) != IFLA_LINKINFO) return;
        if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0)
            throw NetlinkError("rtnetlink: " + what + ": malformed IFLA_LINKINFO", 0);
        for_each_nested(attr, [&](const nlattr* inner) {
            if (mnl_attr_get_type(inner) != IFLA_INFO_KIND) return;
            if (mnl_attr_validate(inner, MNL_TYPE_NUL_STRING) < 0)
                throw NetlinkError("rtnetlink: " + what + ": malformed IFLA_INFO_KIND", 0);
            kind = mnl_attr_get_str(inner);
        });
    });
    return kind;
}

std::optional<IpPrefix> decode_addr_message(const nlmsghdr* nlh, int ifindex,
                                            const std::string& what) {
    if (nlh->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifaddrmsg))
        throw NetlinkError("rtnetlink: " + what + ": malformed address message", 0);
    const auto* msg = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    if (static_cast<int>(msg->ifa_index) != ifindex) return std::nullopt;
    if (msg->ifa_family != AF_INET && msg->ifa_family != AF_INET6) return std::nullopt;
    const std::size_t len = addr_bytes(msg->ifa_family);
    const nlattr* local = nullptr;
    const nlattr* address = nullptr;
    for_each_attr(nlh, sizeof(ifaddrmsg), [&](const nlattr* attr) {
        uint16_t type = mnl_attr_get_type(attr);
        if (type != IFA_LOCAL && type != IFA_ADDRESS) return;
        if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, len) < 0)
            throw NetlinkError("rtnetlink: " + what + ": address attribute of wrong size", 0);
        (type == IFA_LOCAL ? local : address) = attr;
    });
    // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 sends only IFA_ADDRESS.
    const nlattr* chosen = local ? local : address;
    if (!chosen) return std::nullopt;
    IpPrefix p;
    p.addr.family = msg->ifa_family;
    std::memcpy(p.addr.bytes.data(), mnl_attr_get_payload(chosen), len);
    if (msg->ifa_prefixlen > p.addr.max_prefix())
        throw NetlinkError("rtnetlink: " + what + ": prefix length out of range", 0);
    p.len = msg->ifa_prefixlen;
    return p;
}

}  // namespace nb
