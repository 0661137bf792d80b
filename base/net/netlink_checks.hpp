// Checks shared by the decoders of received netlink replies (base/net/rtnl_reply.cpp,
// agent/wg/netlink_control.cpp) where libmnl or plain int arithmetic is not enough; both
// cases were found by fuzzing.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

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

// The datagram's bytes as libmnl may read them: aligned for nlmsghdr (its fields are
// read in place) and followed by zeros up to the next multiple of 4. libmnl's attribute
// walks end at MNL_ALIGN(nlmsg_len), so for a last message whose length is not a multiple
// of 4 they read up to 3 bytes past the datagram (found by fuzzing). Returns where to
// read; `copy` holds the bytes when they had to move (operator new's storage is aligned
// for any fundamental type). An empty datagram is not copied: its copy would be null.
inline const void* mnl_readable(std::span<const uint8_t> datagram, std::vector<uint8_t>& copy) {
    const void* data = datagram.data();
    if (datagram.empty()) return data;
    const bool misaligned = reinterpret_cast<std::uintptr_t>(data) % alignof(nlmsghdr) != 0;
    const std::size_t padded = (datagram.size() + 3) & ~std::size_t{3};
    if (!misaligned && padded == datagram.size()) return data;
    copy.assign(datagram.begin(), datagram.end());
    copy.resize(padded, 0);
    return copy.data();
}

}  // namespace nb
