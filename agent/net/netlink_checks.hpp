// Checks shared by the decoders of received netlink replies (agent/net/rtnl_reply.cpp,
// agent/wg/netlink_control.cpp) where libmnl or plain int arithmetic is not enough; both
// cases were found by fuzzing.
#pragma once

#include <linux/netlink.h>

namespace nb {

// Whether a message lies within what is left of its datagram. libmnl 1.0.4's
// mnl_nlmsg_ok() compares nlmsg_len as an int, so a length of 2 GiB or more passes as
// fitting any datagram and the next step of the walk lands gigabytes past it. A drop-in
// for it, comparing unsigned.
inline bool nlmsg_fits(const nlmsghdr* nlh, int remaining) {
    return remaining >= static_cast<int>(sizeof(nlmsghdr)) && nlh->nlmsg_len >= sizeof(nlmsghdr) &&
           nlh->nlmsg_len <= static_cast<unsigned>(remaining);
}

// The positive errno of a kernel status (NLMSG_ERROR's error, NLMSG_DONE's status; sent
// negated), or 0 for a value no kernel sends: beyond MAX_ERRNO (4095), such as INT_MIN,
// whose negation does not fit an int.
inline int netlink_errno(int status) {
    if (status < -4095 || status > 4095) return 0;
    return status < 0 ? -status : status;
}

}  // namespace nb
