// rtnetlink replies decoded without a socket: the checks every received datagram goes
// through, and the data messages the agent reads (a link's kind, its addresses). Kept
// apart from the requests in rtnl.cpp so tests and the fuzzer reach them without a kernel.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "base/net/ip.hpp"
#include "base/net/rtnl.hpp"

struct nlmsghdr;

namespace nb {

// What one datagram of a reply said.
struct RtnlReplyStatus {
    enum class State {
        More,    // the reply goes on in the next datagram
        Done,    // the ack, or the end of a dump
        Failed,  // see error
    };
    State state = State::More;
    int error = 0;             // Failed: a positive errno
    bool from_kernel = false;  // Failed: the kernel's error, else a check on our side: a
                               // wrong sequence number or port, EINTR for an interrupted
                               // dump, EBADMSG for a truncated message
    std::string kernel_text;   // the kernel's extended-ack message, if any
};

// Runs one datagram of the reply to request `seq` from port `portid` through libmnl's
// checks; each data message goes to `on_data`, whose exception is rethrown here.
RtnlReplyStatus decode_rtnl_reply(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid,
                                  const std::function<void(const nlmsghdr*)>& on_data);

// IFLA_INFO_KIND of an RTM_NEWLINK message, nullopt when it has none. Throws
// NetlinkError (error_code 0) "rtnetlink: <what>: malformed ..." otherwise.
std::optional<std::string> decode_link_kind(const nlmsghdr* nlh, const std::string& what);

// The address of an RTM_NEWADDR message about link `ifindex`, with its prefix length:
// IFA_LOCAL (the interface's own address), else IFA_ADDRESS (all IPv6 sends). nullopt for
// another link, a family other than IPv4/IPv6, or no address. Throws NetlinkError
// (error_code 0) for a malformed message.
std::optional<IpPrefix> decode_addr_message(const nlmsghdr* nlh, int ifindex,
                                            const std::string& what);

}  // namespace nb
