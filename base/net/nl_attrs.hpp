// Walking netlink attributes. libmnl's iteration macros do not compile as C++ (void*
// conversions); these do the same walk, with mnl_attr_ok bounding every attribute by what
// is left of its container.
#pragma once

#include <libmnl/libmnl.h>

#include <cstddef>

namespace nb {

// Calls fn for each whole attribute; returns the bytes left over after the last one (a
// truncated or zero-length attribute), for callers that refuse them.
template <typename Fn>
int for_each_in(const void* start, std::size_t len, Fn&& fn) {
    const auto* attr = static_cast<const nlattr*>(start);
    int remaining = static_cast<int>(len);
    while (mnl_attr_ok(attr, remaining)) {
        fn(attr);
        remaining -= static_cast<int>(MNL_ALIGN(attr->nla_len));
        attr = mnl_attr_next(attr);
    }
    return remaining;
}

template <typename Fn>
void for_each_attr(const nlmsghdr* nlh, std::size_t header_len, Fn&& fn) {
    std::size_t skip = MNL_ALIGN(header_len);
    std::size_t payload = mnl_nlmsg_get_payload_len(nlh);
    if (payload <= skip) return;
    for_each_in(static_cast<const char*>(mnl_nlmsg_get_payload(nlh)) + skip, payload - skip, fn);
}

template <typename Fn>
void for_each_nested(const nlattr* nest, Fn&& fn) {
    for_each_in(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest), fn);
}

}  // namespace nb
