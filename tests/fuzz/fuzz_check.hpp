// Invariant checks in the fuzz targets: a broken invariant is a bug like a crash, so it
// aborts, and libFuzzer saves the input that broke it.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/net/ip.hpp"

namespace nb::fuzz {

[[noreturn]] inline void broken(const char* what, const char* file, int line,
                                const std::string& detail = {}) {
    std::fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
    std::abort();
}

// An IPv4 address keeps bytes 4..15 zero, and prefix lengths fit the family.
inline bool valid_address(const IpAddr& a) {
    if (a.family == AF_INET6) return true;
    if (a.family != AF_INET) return false;
    for (std::size_t i = 4; i < a.bytes.size(); ++i)
        if (a.bytes[i] != 0) return false;
    return true;
}

inline bool valid_prefix(const IpPrefix& p) {
    return valid_address(p.addr) && p.len <= p.addr.max_prefix();
}

// As IpPrefix promises outside interface addresses: host bits clear.
inline bool normalized(const IpPrefix& p) {
    if (!valid_prefix(p)) return false;
    for (int bit = p.len; bit < p.addr.max_prefix(); ++bit)
        if (p.addr.bytes[static_cast<std::size_t>(bit / 8)] & (0x80 >> (bit % 8))) return false;
    return true;
}

}  // namespace nb::fuzz

#define NB_FUZZ_CHECK(cond)                                         \
    do {                                                            \
        if (!(cond)) ::nb::fuzz::broken(#cond, __FILE__, __LINE__); \
    } while (0)
#define NB_FUZZ_CHECK_MSG(cond, detail)                                       \
    do {                                                                      \
        if (!(cond)) ::nb::fuzz::broken(#cond, __FILE__, __LINE__, (detail)); \
    } while (0)
