#include "agent/activity/packet_injector.hpp"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "agent/activity/checksum.hpp"

namespace nb {

PacketInjector::PacketInjector(int ifindex) : ifindex_(ifindex) {
    if (ifindex <= 0) {
        throw std::invalid_argument("PacketInjector: invalid ifindex " + std::to_string(ifindex));
    }
    // Protocol 0: the socket only sends, so the kernel queues nothing to it.
    fd_ = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        throw std::system_error(errno, std::generic_category(), "socket(AF_PACKET, SOCK_DGRAM)");
    }
    // Straight to the driver, past the qdisc: a qdisc that hashes flows (fq_codel, the
    // default on Debian kernels, on wireguard-go's tun device) hashes a re-injected
    // packet unlike the socket's own, so a newer packet of the same flow could leave
    // first. Bypassing it, a replay is in the device's own queue when send returns,
    // before the program lets newer packets pass. It also skips the tc egress hook,
    // which is fine: replays need no verdict (the cookie check stays for kernels
    // that refuse the option).
    int one = 1;
    bypass_qdisc_ = ::setsockopt(fd_, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) == 0;
    socklen_t len = sizeof cookie_;
    if (::getsockopt(fd_, SOL_SOCKET, SO_COOKIE, &cookie_, &len) != 0 || cookie_ == 0) {
        int err = errno;
        ::close(fd_);
        throw std::system_error(err, std::generic_category(), "getsockopt(SO_COOKIE)");
    }
}

PacketInjector::~PacketInjector() {
    ::close(fd_);
}

void PacketInjector::inject(std::span<const uint8_t> ip_packet) {
    uint16_t proto;
    switch (ip_packet.empty() ? 0 : ip_packet[0] >> 4) {
        case 4:
            proto = ETH_P_IP;
            break;
        case 6:
            proto = ETH_P_IPV6;
            break;
        default:
            throw std::invalid_argument("PacketInjector: not an IPv4/IPv6 packet");
    }
    buf_.assign(ip_packet.begin(), ip_packet.end());
    fix_transport_checksum(buf_);

    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(proto);
    to.sll_ifindex = ifindex_;
    ssize_t n = ::sendto(fd_, buf_.data(), buf_.size(), MSG_DONTWAIT,
                         reinterpret_cast<const sockaddr*>(&to), sizeof to);
    if (n < 0) {
        throw std::system_error(errno, std::generic_category(),
                                "inject into ifindex " + std::to_string(ifindex_));
    }
}

}  // namespace nb
