// Re-injects held packets into the WireGuard device as if the stack had sent them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace nb {

// An AF_PACKET SOCK_DGRAM socket with PACKET_QDISC_BYPASS: packets sent on it go to
// the driver directly, in order, past the qdisc and the tc egress hook. Where the
// kernel refuses the bypass they go through dev_queue_xmit, and the tc egress program
// lets them through by recognising this socket's cookie. The device is layer 3, so no
// link-layer header is built.
class PacketInjector {
  public:
    explicit PacketInjector(int ifindex);
    ~PacketInjector();
    PacketInjector(const PacketInjector&) = delete;
    PacketInjector& operator=(const PacketInjector&) = delete;

    // SO_COOKIE of the socket: non-zero, fixed for its lifetime.
    uint64_t socket_cookie() const { return cookie_; }
    // Whether sends skip the qdisc (and so the tc egress hook); see the constructor.
    bool bypasses_qdisc() const { return bypass_qdisc_; }
    int ifindex() const { return ifindex_; }

    // Sends one IPv4/IPv6 packet (protocol from the version nibble) after writing its
    // full transport checksum (see fix_transport_checksum). Never blocks. Throws
    // std::invalid_argument for bytes that are not IPv4/IPv6 and std::system_error
    // when the kernel refuses (ENOBUFS, ENETDOWN, EMSGSIZE, ...).
    void inject(std::span<const uint8_t> ip_packet);

  private:
    int ifindex_;
    int fd_ = -1;
    uint64_t cookie_ = 0;
    bool bypass_qdisc_ = false;
    std::vector<uint8_t> buf_;  // reused copy: the checksum fix writes into it
};

}  // namespace nb
