// rtnetlink replies without a kernel: canned acks, errors and dumps in the kernel's
// layout through decode_rtnl_reply, and the link and address messages the agent reads.
#include "base/net/rtnl_reply.hpp"

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "tests/support/fuzz_seed.hpp"

namespace nb {
namespace {

constexpr uint32_t kSeq = 4242;
constexpr uint32_t kPort = 777;
constexpr int kIndex = 5;

using Bytes = std::vector<uint8_t>;

class Msg {
  public:
    explicit Msg(uint16_t type, uint16_t flags = 0, uint32_t seq = kSeq, uint32_t pid = kPort)
        : buf_(8192) {
        nlh_ = mnl_nlmsg_put_header(buf_.data());
        nlh_->nlmsg_type = type;
        nlh_->nlmsg_flags = flags;
        nlh_->nlmsg_seq = seq;
        nlh_->nlmsg_pid = pid;
    }
    nlmsghdr* nlh() { return nlh_; }
    template <typename T>
    T* extra() {
        return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T)));
    }
    Bytes bytes() const { return {buf_.begin(), buf_.begin() + nlh_->nlmsg_len}; }

  private:
    Bytes buf_;
    nlmsghdr* nlh_;
};

Bytes ack_msg(int error = 0, const char* extack = nullptr, uint16_t flags = NLM_F_CAPPED) {
    Msg m(NLMSG_ERROR, static_cast<uint16_t>(flags | (extack ? NLM_F_ACK_TLVS : 0)));
    auto* e = m.extra<nlmsgerr>();
    e->error = error;
    e->msg.nlmsg_len = sizeof(nlmsghdr);
    if (extack) mnl_attr_put_strz(m.nlh(), NLMSGERR_ATTR_MSG, extack);
    return m.bytes();
}

Bytes done_msg(int status = 0, uint16_t flags = NLM_F_MULTI) {
    Msg m(NLMSG_DONE, flags);
    *m.extra<int>() = status;
    return m.bytes();
}

Bytes link_msg(const char* kind, uint16_t flags = NLM_F_MULTI) {
    Msg m(RTM_NEWLINK, flags);
    auto* ifi = m.extra<ifinfomsg>();
    ifi->ifi_index = kIndex;
    mnl_attr_put_strz(m.nlh(), IFLA_IFNAME, "wg0");
    mnl_attr_put_u32(m.nlh(), IFLA_MTU, 1420);
    if (kind) {
        nlattr* info = mnl_attr_nest_start(m.nlh(), IFLA_LINKINFO);
        mnl_attr_put_strz(m.nlh(), IFLA_INFO_KIND, kind);
        mnl_attr_nest_end(m.nlh(), info);
    }
    return m.bytes();
}

// IPv4 sends IFA_LOCAL and IFA_ADDRESS (the peer on point-to-point links), IPv6 only
// IFA_ADDRESS.
Bytes addr_msg(int family, const Bytes& local, const Bytes& address, uint8_t prefixlen,
               int index = kIndex) {
    Msg m(RTM_NEWADDR, NLM_F_MULTI);
    auto* ifa = m.extra<ifaddrmsg>();
    ifa->ifa_family = static_cast<uint8_t>(family);
    ifa->ifa_prefixlen = prefixlen;
    ifa->ifa_index = static_cast<uint32_t>(index);
    if (!address.empty()) mnl_attr_put(m.nlh(), IFA_ADDRESS, address.size(), address.data());
    if (!local.empty()) mnl_attr_put(m.nlh(), IFA_LOCAL, local.size(), local.data());
    mnl_attr_put_strz(m.nlh(), IFA_LABEL, "wg0");
    return m.bytes();
}

Bytes concat(std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

// What the agent's own readers take from a reply: link kinds and addresses, as
// link_kind() and addr_list() collect them, and the final status.
struct Outcome {
    RtnlReplyStatus status;
    std::vector<std::string> kinds;
    std::vector<IpPrefix> addrs;
    std::string thrown;  // a malformed data message
};

Outcome run(const std::vector<Bytes>& datagrams) {
    test::fuzz_seed("rtnl_replies", test::frame_datagrams(datagrams));
    Outcome o;
    auto on_data = [&](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type == RTM_NEWLINK) {
            if (auto k = decode_link_kind(nlh, "reading the kind of link wg0"))
                o.kinds.push_back(*k);
        } else if (auto a = decode_addr_message(nlh, kIndex, "listing addresses of wg0")) {
            o.addrs.push_back(*a);
        }
    };
    try {
        for (const Bytes& d : datagrams) {
            o.status = decode_rtnl_reply(d, kSeq, kPort, on_data);
            if (o.status.state != RtnlReplyStatus::State::More) break;
        }
    } catch (const NetlinkError& e) {
        o.thrown = e.what();
    }
    return o;
}

using State = RtnlReplyStatus::State;

TEST(RtnlReply, AckEndsTheReply) {
    Outcome o = run({ack_msg()});
    EXPECT_EQ(o.status.state, State::Done);
    o = run({concat({Msg(NLMSG_NOOP).bytes(), ack_msg()})});
    EXPECT_EQ(o.status.state, State::Done);
    // A datagram without the ack: the reply goes on.
    o = run({Msg(NLMSG_NOOP).bytes()});
    EXPECT_EQ(o.status.state, State::More);
}

TEST(RtnlReply, KernelErrorsCarryTheirErrnoAndText) {
    Outcome o = run({ack_msg(-EEXIST)});
    EXPECT_EQ(o.status.state, State::Failed);
    EXPECT_TRUE(o.status.from_kernel);
    EXPECT_EQ(o.status.error, EEXIST);
    EXPECT_EQ(o.status.kernel_text, "");
    o = run({ack_msg(-EINVAL, "Invalid prefix length")});
    EXPECT_EQ(o.status.error, EINVAL);
    EXPECT_EQ(o.status.kernel_text, "Invalid prefix length");
    // Not capped: the echoed request sits between the error and its TLVs.
    {
        Msg m(NLMSG_ERROR, NLM_F_ACK_TLVS);
        auto* e = m.extra<nlmsgerr>();
        e->error = -ENODEV;
        e->msg.nlmsg_len = sizeof(nlmsghdr) + 8;
        mnl_nlmsg_put_extra_header(m.nlh(), 8);
        mnl_attr_put_strz(m.nlh(), NLMSGERR_ATTR_MSG, "no device");
        o = run({m.bytes()});
        EXPECT_EQ(o.status.error, ENODEV);
        EXPECT_EQ(o.status.kernel_text, "no device");
    }
    // A dump that failed part-way, and a lost one.
    o = run({concat({link_msg("dummy"), done_msg(-EMSGSIZE)})});
    EXPECT_EQ(o.status.state, State::Failed);
    EXPECT_EQ(o.status.error, EMSGSIZE);
    o = run({Msg(NLMSG_OVERRUN).bytes()});
    EXPECT_EQ(o.status.error, ENOBUFS);
    // An error message too short for struct nlmsgerr.
    {
        Msg m(NLMSG_ERROR);
        mnl_nlmsg_put_extra_header(m.nlh(), 4);
        o = run({m.bytes()});
        EXPECT_EQ(o.status.state, State::Failed);
        EXPECT_EQ(o.status.error, EBADMSG);
    }
}

// libmnl's attribute walk ends at MNL_ALIGN(nlmsg_len): for a last message whose length
// is not a multiple of 4 it read up to 3 bytes past the datagram (fuzz_rtnl_replies; the
// kernel pads, a reply here need not). Here the extack string's last byte lies past the
// message; the byte after the datagram is not NUL, so a walk that reads it finds no
// string, and one that reads zero padding finds "ab".
TEST(RtnlReply, AttributesAreNeverReadPastTheDatagram) {
    Bytes m = ack_msg(-EINVAL, "ab");
    auto* nlh = reinterpret_cast<nlmsghdr*>(m.data());
    auto* attr = reinterpret_cast<nlattr*>(m.data() + sizeof(nlmsghdr) + sizeof(nlmsgerr));
    ASSERT_EQ(attr->nla_type, NLMSGERR_ATTR_MSG);
    nlh->nlmsg_len =
        static_cast<uint32_t>(sizeof(nlmsghdr) + sizeof(nlmsgerr) + sizeof(nlattr) + 2);
    std::vector<uint8_t> storage(m.begin(), m.begin() + nlh->nlmsg_len);
    storage.push_back('X');  // just past the datagram
    const std::span<const uint8_t> datagram(storage.data(), storage.size() - 1);
    const RtnlReplyStatus st = decode_rtnl_reply(datagram, kSeq, kPort, [](const nlmsghdr*) {});
    EXPECT_EQ(st.state, RtnlReplyStatus::State::Failed);
    EXPECT_EQ(st.error, EINVAL);
    EXPECT_EQ(st.kernel_text, "ab");
}

TEST(RtnlReply, LibmnlChecksFailWithoutTheKernel) {
    Outcome o = run({Msg(NLMSG_NOOP, 0, kSeq + 1).bytes()});
    EXPECT_EQ(o.status.state, State::Failed);
    EXPECT_FALSE(o.status.from_kernel);
    EXPECT_NE(o.status.error, 0);
    o = run({Msg(NLMSG_NOOP, 0, kSeq, kPort + 1).bytes()});
    EXPECT_FALSE(o.status.from_kernel);
    EXPECT_NE(o.status.error, 0);
    // An interrupted dump is EINTR, which addr_list() retries on.
    o = run({link_msg("dummy", NLM_F_MULTI | NLM_F_DUMP_INTR)});
    EXPECT_FALSE(o.status.from_kernel);
    EXPECT_EQ(o.status.error, EINTR);
}

// Found by fuzz_rtnl_replies: an empty datagram at an address not aligned for nlmsghdr
// was "copied" to an empty vector, memcpy to a null pointer, which is undefined (UBSan
// stopped there).
TEST(RtnlReply, EmptyDatagramAtAnOddAddress) {
    Bytes ack = ack_msg();
    Bytes buf(ack.size() + 1);
    std::memcpy(buf.data() + 1, ack.data(), ack.size());
    test::fuzz_seed("rtnl_replies", test::frame_datagrams({{}, ack}));
    auto ignore = [](const nlmsghdr*) {};
    EXPECT_EQ(decode_rtnl_reply({buf.data() + 1, 0}, kSeq, kPort, ignore).state, State::More);
    // A misaligned datagram is still read.
    EXPECT_EQ(decode_rtnl_reply({buf.data() + 1, ack.size()}, kSeq, kPort, ignore).state,
              State::Done);
}

// Found by fuzz_rtnl_replies: a message claiming 2 GiB or more passed libmnl's
// mnl_nlmsg_ok() (it compares the length as an int), whose walk then read gigabytes past
// the datagram (SEGV). It, and any bytes after the last whole message, are a truncated
// message now.
TEST(RtnlReply, MessageLongerThanItsDatagramIsTruncated) {
    for (uint32_t claimed : {0xfa000024u, 0x80000000u, 0xffffffffu, 200u}) {
        Bytes bad = link_msg("dummy");
        reinterpret_cast<nlmsghdr*>(bad.data())->nlmsg_len = claimed;
        Outcome o = run({concat({link_msg("wireguard"), bad, done_msg()})});
        EXPECT_EQ(o.status.state, State::Failed) << claimed;
        EXPECT_FALSE(o.status.from_kernel);
        EXPECT_EQ(o.status.error, EBADMSG);
        EXPECT_EQ(o.kinds, std::vector<std::string>{"wireguard"});  // read up to it
    }
    Outcome o = run({concat({ack_msg(), Bytes{1, 2, 3}})});
    EXPECT_EQ(o.status.state, State::Done);  // the ack ends the reply before the junk
    o = run({concat({link_msg("dummy"), Bytes{1, 2, 3}})});
    EXPECT_EQ(o.status.state, State::Failed);
    EXPECT_EQ(o.status.error, EBADMSG);
}

// Found by fuzz_rtnl_replies: the kernel's status was negated as an int, undefined for
// INT_MIN (UBSan stopped there). A status beyond any errno is a malformed reply now.
TEST(RtnlReply, StatusBeyondAnyErrnoIsABadMessage) {
    for (int status : {INT_MIN, -4096, 4096, INT_MAX}) {
        for (const Bytes& reply : {ack_msg(status), done_msg(status)}) {
            Outcome o = run({reply});
            if (reply == done_msg(status) && status > 0) {
                EXPECT_EQ(o.status.state, State::Done) << status;  // only < 0 is an error
                continue;
            }
            EXPECT_EQ(o.status.state, State::Failed) << status;
            EXPECT_EQ(o.status.error, EBADMSG) << status;
        }
    }
    EXPECT_EQ(run({ack_msg(-4095)}).status.error, 4095);
    EXPECT_EQ(run({ack_msg(EPERM)}).status.error, EPERM);  // either sign is read
}

TEST(RtnlReply, LinkKind) {
    Outcome o = run({concat({link_msg("wireguard"), done_msg()})});
    EXPECT_EQ(o.status.state, State::Done);
    EXPECT_EQ(o.kinds, std::vector<std::string>{"wireguard"});
    o = run({link_msg(nullptr), done_msg()});
    EXPECT_TRUE(o.kinds.empty());
    // A kind without its NUL, and a link info too short to hold attributes.
    {
        Msg m(RTM_NEWLINK, NLM_F_MULTI);
        m.extra<ifinfomsg>();
        nlattr* info = mnl_attr_nest_start(m.nlh(), IFLA_LINKINFO);
        mnl_attr_put(m.nlh(), IFLA_INFO_KIND, 3, "tun");
        mnl_attr_nest_end(m.nlh(), info);
        o = run({m.bytes()});
        EXPECT_NE(o.thrown.find("malformed IFLA_INFO_KIND"), std::string::npos) << o.thrown;
    }
    {
        Msg m(RTM_NEWLINK, NLM_F_MULTI);
        m.extra<ifinfomsg>();
        mnl_attr_put_u16(m.nlh(), IFLA_LINKINFO, 1);
        o = run({m.bytes()});
        EXPECT_NE(o.thrown.find("malformed IFLA_LINKINFO"), std::string::npos) << o.thrown;
    }
    {
        Msg m(RTM_NEWLINK, NLM_F_MULTI);
        o = run({m.bytes()});
        EXPECT_NE(o.thrown.find("reading the kind of link wg0: malformed link message"),
                  std::string::npos)
            << o.thrown;
    }
}

TEST(RtnlReply, Addresses) {
    Bytes v4 = {10, 0, 0, 1}, peer = {10, 0, 0, 2};
    Bytes v6 = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    Outcome o = run({concat({addr_msg(AF_INET, v4, peer, 24), addr_msg(AF_INET6, {}, v6, 64)}),
                     concat({addr_msg(AF_INET, {10, 9, 9, 9}, {}, 8, kIndex + 1), done_msg()})});
    EXPECT_EQ(o.status.state, State::Done);
    ASSERT_EQ(o.addrs.size(), 2u);
    EXPECT_EQ(o.addrs[0].str(), "10.0.0.1/24");  // IFA_LOCAL, host bits kept
    EXPECT_EQ(o.addrs[1].str(), "fd00::1/64");
    // Other families and messages without an address are skipped.
    o = run({concat({addr_msg(AF_PACKET, v4, {}, 8), addr_msg(AF_INET, {}, {}, 8), done_msg()})});
    EXPECT_TRUE(o.addrs.empty());
    EXPECT_EQ(o.status.state, State::Done);
    o = run({addr_msg(AF_INET, v6, {}, 24)});
    EXPECT_NE(o.thrown.find("address attribute of wrong size"), std::string::npos) << o.thrown;
    o = run({addr_msg(AF_INET, v4, {}, 33)});
    EXPECT_NE(o.thrown.find("prefix length out of range"), std::string::npos) << o.thrown;
    o = run({Msg(RTM_NEWADDR, NLM_F_MULTI).bytes()});
    EXPECT_NE(o.thrown.find("listing addresses of wg0: malformed address message"),
              std::string::npos)
        << o.thrown;
}

}  // namespace
}  // namespace nb
