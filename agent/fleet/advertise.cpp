#include "agent/fleet/advertise.hpp"

#include <ifaddrs.h>
#include <net/if.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace nb {

namespace {

std::optional<IpAddr> address_of(const sockaddr* sa) {
    IpAddr a;
    if (sa->sa_family == AF_INET) {
        a.family = AF_INET;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        a.family = AF_INET6;
        std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    } else {
        return std::nullopt;
    }
    return a;
}

bool link_local(const IpAddr& a) {
    if (a.family == AF_INET) return a.bytes[0] == 169 && a.bytes[1] == 254;
    return a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;
}

}  // namespace

std::vector<std::string> host_endpoints(uint16_t port, std::string_view skip_interface,
                                        const std::vector<IpPrefix>& overlay) {
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return {};
    std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> guard(list, ::freeifaddrs);
    std::vector<IpAddr> found;
    for (const ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
        if (skip_interface == i->ifa_name) continue;
        auto a = address_of(i->ifa_addr);
        if (!a || link_local(*a)) continue;
        if (std::any_of(overlay.begin(), overlay.end(),
                        [&](const IpPrefix& p) { return p.contains(*a); }))
            continue;
        found.push_back(*a);
    }
    // IPv4 first (the others more likely reach it), then by address: a stable order, so an
    // unchanged host publishes an unchanged record.
    std::sort(found.begin(), found.end(), [](const IpAddr& x, const IpAddr& y) {
        return x.family != y.family ? x.family == AF_INET : x < y;
    });
    found.erase(std::unique(found.begin(), found.end()), found.end());
    std::vector<std::string> out;
    for (const IpAddr& a : found) out.push_back(SockAddr::from(a, port).str());
    return out;
}

}  // namespace nb
