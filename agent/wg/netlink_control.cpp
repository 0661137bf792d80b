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

#include "base/blocking.hpp"
#include "base/errno_text.hpp"
#include "base/net/netlink_checks.hpp"

namespace nb {

namespace {

constexpr int kDumpAttempts = 5;
// A dump skb is at most 32 KiB plus headers; twice that never truncates (truncation is
// detected anyway: libmnl reports MSG_TRUNC as ENOSPC).
constexpr std::size_t kRecvBuffer = 65536;
constexpr std::size_t kMaxMessageSize = 65536;

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

// --- NetlinkControl ---

void NetlinkControl::SocketCloser::operator()(mnl_socket* s) const {
    mnl_socket_close(s);
}

NetlinkControl::NetlinkControl(std::string interface)
    : interface_(std::move(interface)),
      netns_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)),
      buf_(kRecvBuffer) {
    check_wg_ifname(interface_);
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
    bool consistent = false;
    return read_device(false, consistent);
}

WgDevice NetlinkControl::get_device_as_is(bool& consistent) {
    return read_device(true, consistent);
}

WgDevice NetlinkControl::read_device(bool accept_interrupted, bool& consistent) {
    const std::string what = "reading device " + interface_;
    for (int attempt = 1;; ++attempt) {
        // A failed exchange may leave replies queued; a fresh socket cannot mix them in.
        if (!nl_) open_socket();
        WgDevice dev;
        try {
            uint32_t seq = next_seq();
            auto req = build_get_device_request(interface_, family_id_, seq);
            // The kernel builds the dump as we receive it; decoding each part goes in
            // between, on the same clock.
            BlockingTimer waiting(BlockingKind::WgNetlink);
            send_message(nl_.get(), req.data(), req.size(), what);
            GetDeviceDecoder decoder(family_id_, seq, portid_, what);
            while (!decoder.feed({buf_.data(), receive(what)})) {
            }
            consistent = !decoder.interrupted();
            dev = decoder.take();
            if (consistent) return dev;
            ++interrupted_dumps_;
        } catch (...) {
            nl_.reset();
            throw;
        }
        if (attempt < kDumpAttempts) continue;
        if (accept_interrupted) return dev;
        throw WgError("kernel WireGuard: " + what + ": the device changed during each of " +
                      std::to_string(kDumpAttempts) + " dumps (NLM_F_DUMP_INTR)");
    }
}

void NetlinkControl::transact_ack(const std::vector<uint8_t>& msg, const std::string& what) {
    // The kernel applies a set within sendmsg(); the ack follows.
    BlockingTimer waiting(BlockingKind::WgNetlink);
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
