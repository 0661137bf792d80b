#include "agent/activity/packet_injector.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <gtest/gtest.h>

#include "agent/activity/checksum.hpp"
#include "base/net/packet_summary.hpp"
#include "tests/activity/packets.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/privileged.hpp"

namespace nb {
namespace {

using namespace nb::test;

constexpr const char* kTun = "nbinj0";

// Runs an iproute2 command in the calling thread's network namespace (the forked
// shell inherits it).
void ip(const std::string& args) {
    std::string cmd = "ip " + args;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
}

class Tun {
  public:
    Tun() {
        fd_ = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
        if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "/dev/net/tun");
        ifreq ifr{};
        ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
        std::strncpy(ifr.ifr_name, kTun, IFNAMSIZ - 1);
        if (::ioctl(fd_, TUNSETIFF, &ifr) != 0) {
            int e = errno;
            ::close(fd_);
            throw std::system_error(e, std::generic_category(), "TUNSETIFF");
        }
    }
    ~Tun() { ::close(fd_); }

    // Next packet the device transmitted that `match` accepts, or empty after 2 s.
    Bytes next(const std::function<bool(const Bytes&)>& match) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 100) != 1) continue;
            Bytes buf(65536);
            ssize_t n = ::read(fd_, buf.data(), buf.size());
            if (n <= 0) continue;
            buf.resize(static_cast<size_t>(n));
            if (match(buf)) return buf;
        }
        return {};
    }

  private:
    int fd_ = -1;
};

std::function<bool(const Bytes&)> to_port(uint8_t proto, uint16_t dport) {
    return [=](const Bytes& p) {
        auto s = summarize_packet(p);
        return s && s->proto == proto && s->dport == dport;
    };
}

// Offset of the transport checksum in a packet without extension headers.
size_t check_at(const Bytes& p, uint8_t proto) {
    return (p[0] >> 4 == 4 ? size_t{20} : size_t{40}) + checksum_offset(proto);
}

TEST(PacketInjector, RejectsBadArguments) {
    EXPECT_THROW(PacketInjector(0), std::invalid_argument);
    NB_REQUIRE_ROOT();
    PacketInjector inj(1);
    EXPECT_THROW(inj.inject({}), std::invalid_argument);
    Bytes not_ip = {0x50, 0, 0, 0};
    EXPECT_THROW(inj.inject(not_ip), std::invalid_argument);
}

TEST(PacketInjector, CookieIsNonZeroStableAndPerSocket) {
    NB_REQUIRE_ROOT();
    PacketInjector a(1), b(1);
    EXPECT_NE(a.socket_cookie(), 0u);
    EXPECT_EQ(a.socket_cookie(), a.socket_cookie());
    EXPECT_NE(a.socket_cookie(), b.socket_cookie());
}

// The kernel's own packets out of a tun device carry full checksums: they are the
// oracle. The same packets with the checksum zeroed or partial, injected, must come
// out of the device byte for byte identical.
TEST(PacketInjector, DeliversPacketsWithFixedChecksums) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] {
        Tun tun;
        ip(std::string("link set ") + kTun + " up");
        ip(std::string("addr add 10.77.0.1/24 dev ") + kTun);
        ip(std::string("-6 addr add fd77::1/64 dev ") + kTun + " nodad");
        unsigned ifindex = if_nametoindex(kTun);
        ASSERT_NE(ifindex, 0u);
        PacketInjector inj(static_cast<int>(ifindex));
        const uint64_t cookie = inj.socket_cookie();

        struct Case {
            const char* name;
            int family;
            int type;
            const char* addr;
            uint16_t port;
            uint8_t proto;
        };
        for (const Case& c : {Case{"udp4", AF_INET, SOCK_DGRAM, "10.77.0.2", 9001, IPPROTO_UDP},
                              Case{"udp6", AF_INET6, SOCK_DGRAM, "fd77::2", 9002, IPPROTO_UDP},
                              Case{"tcp4", AF_INET, SOCK_STREAM, "10.77.0.2", 9003, IPPROTO_TCP},
                              Case{"tcp6", AF_INET6, SOCK_STREAM, "fd77::2", 9004, IPPROTO_TCP}}) {
            SCOPED_TRACE(c.name);
            int s = ::socket(c.family, c.type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            ASSERT_GE(s, 0);
            sockaddr_storage ss{};
            socklen_t len;
            if (c.family == AF_INET) {
                auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
                sin->sin_family = AF_INET;
                sin->sin_port = htons(c.port);
                inet_pton(AF_INET, c.addr, &sin->sin_addr);
                len = sizeof *sin;
            } else {
                auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
                sin6->sin6_family = AF_INET6;
                sin6->sin6_port = htons(c.port);
                inet_pton(AF_INET6, c.addr, &sin6->sin6_addr);
                len = sizeof *sin6;
            }
            if (c.type == SOCK_DGRAM) {
                const char msg[] = "held packet, odd length";
                ASSERT_EQ(::sendto(s, msg, sizeof msg, 0, reinterpret_cast<sockaddr*>(&ss), len),
                          static_cast<ssize_t>(sizeof msg));
            } else {
                ::connect(s, reinterpret_cast<sockaddr*>(&ss), len);  // sends a SYN
            }
            Bytes kernel = tun.next(to_port(c.proto, c.port));
            ::close(s);
            ASSERT_FALSE(kernel.empty()) << "kernel packet not seen on the tun";

            // Our fix agrees with the kernel's checksum.
            Bytes same = kernel;
            EXPECT_TRUE(fix_transport_checksum(same));
            EXPECT_EQ(same, kernel);

            for (uint16_t broken : {uint16_t{0}, uint16_t{0x1234}}) {
                Bytes held = kernel;
                put16(held, check_at(held, c.proto), broken);
                inj.inject(held);
                Bytes out = tun.next(to_port(c.proto, c.port));
                EXPECT_EQ(out, kernel) << "field was " << broken;
            }
        }
        EXPECT_EQ(inj.socket_cookie(), cookie);
    });
}

TEST(PacketInjector, KeepsOrderAndReportsKernelErrors) {
    NB_REQUIRE_ROOT();
    in_fresh_netns([] {
        Tun tun;
        ip(std::string("link set ") + kTun + " up");
        PacketInjector inj(static_cast<int>(if_nametoindex(kTun)));
        for (uint16_t i = 0; i < 20; ++i) {
            Bytes seg = segment(IPPROTO_UDP, "seq", 1000, static_cast<uint16_t>(7000 + i));
            inj.inject(ipv4_packet(IPPROTO_UDP, seg));
        }
        for (uint16_t i = 0; i < 20; ++i) {
            Bytes out = tun.next([](const Bytes& p) {
                auto s = summarize_packet(p);
                return s && s->sport == 1000;
            });
            auto s = summarize_packet(out);
            ASSERT_TRUE(s) << "packet " << i << " missing";
            EXPECT_EQ(s->dport, 7000 + i);
        }
        // Larger than the MTU (1500).
        Bytes big = ipv4_packet(IPPROTO_UDP, segment(IPPROTO_UDP, std::string(2000, 'b')));
        try {
            inj.inject(big);
            ADD_FAILURE() << "oversized packet accepted";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), EMSGSIZE) << e.what();
        }
        ip(std::string("link set ") + kTun + " down");
        try {
            inj.inject(ipv4_packet(IPPROTO_UDP, segment(IPPROTO_UDP, "down")));
            ADD_FAILURE() << "inject into a down device succeeded";
        } catch (const std::system_error& e) {
            EXPECT_EQ(e.code().value(), ENETDOWN) << e.what();
        }
    });
}

}  // namespace
}  // namespace nb
