// nbtraffic: the traffic the integration tests send through the lab, with a verdict.
//
//   udp-recv   --bind ADDR --port P --count N --timeout-ms T [--order-any 1] [--max-gap-ms G]
//   udp-burst  --dst ADDR --port P --count N --within-ms T [--size BYTES]
//   udp-sweep  --from ADDR --hosts N --port P --within-ms T   (one datagram per address)
//   tcp-listen --bind ADDR --port P [--count K] [--timeout-ms T]
//   tcp-connect --dst ADDR --port P --timeout-ms T
//   tcp-sink   --bind ADDR --port P --bytes N --timeout-ms T   (one stream, checked)
//   tcp-write  --dst ADDR --port P --warmup W --bytes N --go-file F --timeout-ms T
//
// tcp-write sends W bytes, waits until they are acknowledged and prints "ready"; once F
// exists it sends N more in one send() (a large write: one GSO super-packet where the
// window allows) and waits until they are acknowledged. tcp-sink checks every byte of
// the W + N against the pattern both use.
//
// Listeners print "ready" once bound so scripts can wait for them. Exit codes: 0 the
// check passed, 1 it failed (the reason is printed), 2 bad usage or a setup error.
#include <arpa/inet.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace nb {
namespace {

using Clock = std::chrono::steady_clock;

// Bad arguments or a failed setup step: exit code 2, unlike a failed check.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string errno_text(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {
        if (fd_ < 0) throw UsageError(errno_text("socket"));
    }
    ~Fd() { ::close(fd_); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

class Args {
  public:
    Args(int argc, char** argv, int first) {
        for (int i = first; i < argc; i += 2) {
            std::string_view key = argv[i];
            if (!key.starts_with("--") || key.size() < 3)
                throw UsageError("expected an option, got '" + std::string(key) + "'");
            if (i + 1 >= argc) throw UsageError("option " + std::string(key) + " needs a value");
            values_[std::string(key.substr(2))] = argv[i + 1];
        }
    }

    std::string str(const std::string& name) {
        auto it = values_.find(name);
        if (it == values_.end()) throw UsageError("missing --" + name);
        std::string v = it->second;
        values_.erase(it);
        return v;
    }

    uint64_t num(const std::string& name, uint64_t max) {
        std::string s = str(name);
        uint64_t v = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || end != s.data() + s.size() || v > max)
            throw UsageError("--" + name + " must be a number up to " + std::to_string(max) +
                             ", got '" + s + "'");
        return v;
    }

    uint64_t num_or(const std::string& name, uint64_t max, uint64_t fallback) {
        return values_.contains(name) ? num(name, max) : fallback;
    }

    // Called after all options were read, so a typo is an error rather than ignored.
    void finish() const {
        if (!values_.empty()) throw UsageError("unknown option --" + values_.begin()->first);
    }

  private:
    std::map<std::string, std::string> values_;
};

struct Endpoint {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
};

Endpoint endpoint(const std::string& addr, uint64_t port) {
    Endpoint ep;
    if (port == 0 || port > 65535) throw UsageError("port must be 1..65535");
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.ss);
    if (inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        ep.len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        ep.len = sizeof(sockaddr_in6);
    } else {
        throw UsageError("not an IPv4 or IPv6 address: '" + addr + "'");
    }
    return ep;
}

const sockaddr* sa(const Endpoint& ep) {
    return reinterpret_cast<const sockaddr*>(&ep.ss);
}

void print_ready() {
    std::printf("ready\n");
    std::fflush(stdout);
}

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

double ms_since(Clock::time_point start) {
    return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Waits for `events` on fd until the deadline; false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, remaining_ms(deadline));
        if (r > 0) return true;
        if (r == 0) return false;
        if (errno != EINTR) throw UsageError(errno_text("poll"));
    }
}

// Ranges of the sequence numbers in [0, count) that never arrived, e.g. "3-7, 12".
std::string missing_ranges(const std::vector<bool>& seen) {
    std::string out;
    size_t i = 0;
    while (i < seen.size()) {
        if (seen[i]) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j + 1 < seen.size() && !seen[j + 1]) ++j;
        if (!out.empty()) out += ", ";
        out += std::to_string(i);
        if (j > i) out += "-" + std::to_string(j);
        i = j + 1;
    }
    return out;
}

int udp_recv(Args& args) {
    Endpoint bind_ep = endpoint(args.str("bind"), args.num("port", 65535));
    uint64_t count = args.num("count", 10'000'000);
    auto timeout = std::chrono::milliseconds(args.num("timeout-ms", 3'600'000));
    // any: reordering is reported but not a failure (what WireGuard alone guarantees).
    std::string order = args.num_or("order-any", 1, 0) ? "any" : "strict";
    // A steady stream must never stall longer than this between two datagrams (0: any).
    const uint64_t max_gap_ms = args.num_or("max-gap-ms", 3'600'000, 0);
    args.finish();

    Fd fd(::socket(bind_ep.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    // A burst must not be lost in our own socket buffer: that would blame the tunnel.
    int rcvbuf = 8 << 20;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (::bind(fd.get(), sa(bind_ep), bind_ep.len) != 0) throw UsageError(errno_text("bind"));
    print_ready();

    auto start = Clock::now();
    auto deadline = start + timeout;
    std::vector<bool> seen(count, false);
    std::vector<std::string> problems;
    uint64_t received = 0;
    uint64_t expected_next = 0;
    bool in_order = true;
    double max_gap = 0, last_at = -1;
    uint64_t gap_after = 0;  // the sequence number before the longest gap
    uint64_t last_seq = 0;
    while (received < count) {
        if (!wait_for(fd.get(), POLLIN, deadline)) break;
        unsigned char buf[65536];
        ssize_t n = ::recv(fd.get(), buf, sizeof(buf), 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw UsageError(errno_text("recv"));
        }
        ++received;
        const double at = ms_since(start);
        if (last_at >= 0 && at - last_at > max_gap) {
            max_gap = at - last_at;
            gap_after = last_seq;
        }
        last_at = at;
        if (n < 4) {
            problems.push_back("datagram #" + std::to_string(received) + " has only " +
                               std::to_string(n) + " bytes, no sequence number");
            continue;
        }
        uint32_t net_seq = 0;
        std::memcpy(&net_seq, buf, 4);
        uint64_t seq = ntohl(net_seq);
        if (seq >= count) {
            problems.push_back("unexpected sequence number " + std::to_string(seq));
        } else if (seen[seq]) {
            problems.push_back("duplicate sequence number " + std::to_string(seq));
        } else {
            seen[seq] = true;
        }
        if (seq != expected_next) {
            if (in_order && order == "any")
                std::printf("reordered: got %llu where %llu was due\n",
                            static_cast<unsigned long long>(seq),
                            static_cast<unsigned long long>(expected_next));
            else if (in_order)
                problems.push_back("out of order: got " + std::to_string(seq) + " where " +
                                   std::to_string(expected_next) + " was due");
            in_order = false;
        }
        expected_next = seq + 1;
        last_seq = seq;
    }
    if (max_gap_ms && max_gap > static_cast<double>(max_gap_ms))
        problems.push_back("a gap of " + std::to_string(static_cast<long long>(max_gap)) +
                           " ms after datagram " + std::to_string(gap_after) + " (limit " +
                           std::to_string(max_gap_ms) + " ms)");
    if (max_gap_ms)
        std::printf("longest gap: %.1f ms after datagram %llu\n", max_gap,
                    static_cast<unsigned long long>(gap_after));

    std::string missing = missing_ranges(seen);
    if (!missing.empty()) problems.push_back("missing: " + missing);
    if (problems.empty()) {
        std::printf("received %llu datagrams %sin %.1f ms\n",
                    static_cast<unsigned long long>(count), in_order ? "in order " : "",
                    ms_since(start));
        return 0;
    }
    std::printf("FAIL: received %llu of %llu datagrams within %lld ms\n",
                static_cast<unsigned long long>(received), static_cast<unsigned long long>(count),
                static_cast<long long>(timeout.count()));
    for (const auto& p : problems) std::printf("  %s\n", p.c_str());
    return 1;
}

// Sleeps until item i of `count` is due when they are spread evenly over `within_ms`
// from `start` (the last one before the time is up).
void wait_for_slot(const timespec& start, uint64_t within_ms, uint64_t i, uint64_t count) {
    uint64_t offset_ns = within_ms * 1'000'000ULL * i / count;
    timespec at = start;
    at.tv_sec += static_cast<time_t>(offset_ns / 1'000'000'000ULL);
    at.tv_nsec += static_cast<long>(offset_ns % 1'000'000'000ULL);
    if (at.tv_nsec >= 1'000'000'000L) {
        at.tv_sec += 1;
        at.tv_nsec -= 1'000'000'000L;
    }
    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
}

int udp_burst(Args& args) {
    Endpoint dst = endpoint(args.str("dst"), args.num("port", 65535));
    uint64_t count = args.num("count", 10'000'000);
    uint64_t within_ms = args.num("within-ms", 3'600'000);
    uint64_t size = args.num_or("size", 65507, 64);
    args.finish();
    if (size < 4) throw UsageError("--size must be at least 4 (the sequence number)");

    Fd fd(::socket(dst.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    std::vector<unsigned char> buf(size, 0);
    timespec start{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    auto t0 = Clock::now();
    for (uint64_t i = 0; i < count; ++i) {
        wait_for_slot(start, within_ms, i, count);
        uint32_t seq = htonl(static_cast<uint32_t>(i));
        std::memcpy(buf.data(), &seq, 4);
        if (::sendto(fd.get(), buf.data(), buf.size(), 0, sa(dst), dst.len) < 0) {
            std::printf("FAIL: sendto of datagram %llu: %s\n", static_cast<unsigned long long>(i),
                        std::strerror(errno));
            return 1;
        }
    }
    std::printf("sent %llu datagrams in %.1f ms\n", static_cast<unsigned long long>(count),
                ms_since(t0));
    return 0;
}

// One datagram to each of `hosts` consecutive IPv4 addresses from --from: a wake storm.
int udp_sweep(Args& args) {
    Endpoint first = endpoint(args.str("from"), args.num("port", 65535));
    uint64_t hosts = args.num("hosts", 16'777'216);
    uint64_t within_ms = args.num("within-ms", 3'600'000);
    args.finish();
    if (first.family() != AF_INET) throw UsageError("--from must be an IPv4 address");
    auto* v4 = reinterpret_cast<sockaddr_in*>(&first.ss);
    const uint32_t base = ntohl(v4->sin_addr.s_addr);
    if (uint64_t{base} + hosts > (1ULL << 32))
        throw UsageError("the sweep runs past 255.255.255.255");

    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    unsigned char buf[32] = {};
    timespec start{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    auto t0 = Clock::now();
    uint64_t failed = 0;
    for (uint64_t i = 0; i < hosts; ++i) {
        wait_for_slot(start, within_ms, i, hosts);
        sockaddr_in to = *v4;
        to.sin_addr.s_addr = htonl(static_cast<uint32_t>(base + i));
        // A host without a route fails here; the rest still go.
        if (::sendto(fd.get(), buf, sizeof(buf), 0, reinterpret_cast<const sockaddr*>(&to),
                     sizeof(to)) < 0)
            ++failed;
    }
    std::printf("swept %llu hosts in %.1f ms, %llu sends failed\n",
                static_cast<unsigned long long>(hosts), ms_since(t0),
                static_cast<unsigned long long>(failed));
    return failed ? 1 : 0;
}

// Binds and listens on `fd`, then prints "ready" for the script waiting on it.
void listen_ready(const Fd& fd, const Endpoint& ep, int backlog) {
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd.get(), sa(ep), ep.len) != 0) throw UsageError(errno_text("bind"));
    if (::listen(fd.get(), backlog) != 0) throw UsageError(errno_text("listen"));
    print_ready();
}

int tcp_listen(Args& args) {
    Endpoint bind_ep = endpoint(args.str("bind"), args.num("port", 65535));
    uint64_t count = args.num_or("count", 1'000'000, 1);
    auto timeout = std::chrono::milliseconds(args.num_or("timeout-ms", 3'600'000, 60'000));
    args.finish();

    Fd fd(::socket(bind_ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    listen_ready(fd, bind_ep, 128);

    auto deadline = Clock::now() + timeout;
    for (uint64_t accepted = 0; accepted < count;) {
        if (!wait_for(fd.get(), POLLIN, deadline)) {
            std::printf("FAIL: accepted %llu of %llu connections within %lld ms\n",
                        static_cast<unsigned long long>(accepted),
                        static_cast<unsigned long long>(count),
                        static_cast<long long>(timeout.count()));
            return 1;
        }
        int c = ::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            throw UsageError(errno_text("accept"));
        }
        Fd conn(c);
        const char byte = '!';
        if (::send(conn.get(), &byte, 1, MSG_NOSIGNAL) != 1)
            std::printf("warning: send on accepted connection: %s\n", std::strerror(errno));
        ++accepted;
    }
    std::printf("accepted %llu connections\n", static_cast<unsigned long long>(count));
    return 0;
}

int tcp_connect(Args& args) {
    Endpoint dst = endpoint(args.str("dst"), args.num("port", 65535));
    auto timeout = std::chrono::milliseconds(args.num("timeout-ms", 3'600'000));
    args.finish();

    Fd fd(::socket(dst.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    auto start = Clock::now();
    auto deadline = start + timeout;
    if (::connect(fd.get(), sa(dst), dst.len) != 0 && errno != EINPROGRESS) {
        std::printf("FAIL: connect: %s\n", std::strerror(errno));
        return 1;
    }
    if (!wait_for(fd.get(), POLLOUT, deadline)) {
        tcp_info info{};
        socklen_t len = sizeof(info);
        ::getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &info, &len);
        std::printf("FAIL: not connected within %lld ms (SYN timeouts: %u)\n",
                    static_cast<long long>(timeout.count()), info.tcpi_retransmits);
        return 1;
    }
    double connect_ms = ms_since(start);
    int err = 0;
    socklen_t errlen = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &errlen);
    if (err != 0) {
        std::printf("FAIL: connect: %s after %.1f ms\n", std::strerror(err), connect_ms);
        return 1;
    }
    tcp_info info{};
    socklen_t len = sizeof(info);
    if (::getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0)
        throw UsageError(errno_text("getsockopt(TCP_INFO)"));

    // The listener writes one byte: reading it proves data flows both ways.
    char byte = 0;
    bool got_byte = wait_for(fd.get(), POLLIN, deadline) && ::recv(fd.get(), &byte, 1, 0) == 1;

    if (info.tcpi_total_retrans != 0) {
        std::printf("FAIL: connected in %.1f ms but with %u retransmissions (first SYN lost)\n",
                    connect_ms, info.tcpi_total_retrans);
        return 1;
    }
    if (!got_byte) {
        std::printf("FAIL: connected in %.1f ms but the listener's byte never arrived\n",
                    connect_ms);
        return 1;
    }
    std::printf("connected in %.1f ms, 0 retransmissions\n", connect_ms);
    return 0;
}

// The stream tcp-write sends and tcp-sink checks: byte i of the connection.
uint8_t stream_byte(uint64_t i) {
    return static_cast<uint8_t>(i % 251);
}

int tcp_sink(Args& args) {
    Endpoint bind_ep = endpoint(args.str("bind"), args.num("port", 65535));
    const uint64_t bytes = args.num("bytes", 1ULL << 32);
    auto deadline = Clock::now() + std::chrono::milliseconds(args.num("timeout-ms", 3'600'000));
    args.finish();

    Fd fd(::socket(bind_ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    listen_ready(fd, bind_ep, 1);
    if (!wait_for(fd.get(), POLLIN, deadline)) {
        std::printf("FAIL: no connection in time\n");
        return 1;
    }
    Fd conn(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    std::vector<uint8_t> buf(1 << 16);
    uint64_t got = 0;
    while (got < bytes) {
        if (!wait_for(conn.get(), POLLIN, deadline)) {
            std::printf("FAIL: received %llu of %llu bytes in time\n",
                        static_cast<unsigned long long>(got),
                        static_cast<unsigned long long>(bytes));
            return 1;
        }
        ssize_t n = ::recv(conn.get(), buf.data(), buf.size(), 0);
        if (n <= 0) {
            std::printf("FAIL: stream ended after %llu of %llu bytes (%s)\n",
                        static_cast<unsigned long long>(got),
                        static_cast<unsigned long long>(bytes),
                        n == 0 ? "closed" : std::strerror(errno));
            return 1;
        }
        for (ssize_t i = 0; i < n; ++i) {
            if (buf[i] != stream_byte(got + i)) {
                std::printf("FAIL: byte %llu is %u, expected %u\n",
                            static_cast<unsigned long long>(got + i), buf[i], stream_byte(got + i));
                return 1;
            }
        }
        got += static_cast<uint64_t>(n);
    }
    std::printf("received %llu bytes intact\n", static_cast<unsigned long long>(got));
    return 0;
}

// Sends stream bytes [from, from + n) in one send() on a blocking socket.
bool send_stream(int fd, uint64_t from, uint64_t n) {
    std::vector<uint8_t> buf(n);
    for (uint64_t i = 0; i < n; ++i) buf[i] = stream_byte(from + i);
    if (::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(n)) return true;
    std::printf("FAIL: send of %llu bytes: %s\n", static_cast<unsigned long long>(n),
                std::strerror(errno));
    return false;
}

// Waits until the peer acknowledged everything sent (the send queue is empty).
bool all_acked(int fd, Clock::time_point deadline) {
    for (;;) {
        int unacked = 0;
        if (::ioctl(fd, SIOCOUTQ, &unacked) != 0) throw UsageError(errno_text("ioctl(SIOCOUTQ)"));
        if (unacked == 0) return true;
        if (Clock::now() >= deadline) return false;
        ::usleep(1000);
    }
}

int tcp_write(Args& args) {
    Endpoint dst = endpoint(args.str("dst"), args.num("port", 65535));
    const uint64_t warmup = args.num("warmup", 1ULL << 30);
    const uint64_t bytes = args.num_or("bytes", 1ULL << 30, 65536);
    const std::string go_file = args.str("go-file");
    auto deadline = Clock::now() + std::chrono::milliseconds(args.num("timeout-ms", 3'600'000));
    args.finish();

    Fd fd(::socket(dst.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    // Room for the whole write at once, so one send() hands TCP all of it.
    int sndbuf = 4 << 20;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (::connect(fd.get(), sa(dst), dst.len) != 0) {
        std::printf("FAIL: connect: %s\n", std::strerror(errno));
        return 1;
    }
    if (!send_stream(fd.get(), 0, warmup)) return 1;
    if (!all_acked(fd.get(), deadline)) {
        std::printf("FAIL: the %llu warm-up bytes were not acknowledged in time\n",
                    static_cast<unsigned long long>(warmup));
        return 1;
    }
    print_ready();
    struct stat st {};
    while (::stat(go_file.c_str(), &st) != 0) {
        if (Clock::now() >= deadline) {
            std::printf("FAIL: %s never appeared\n", go_file.c_str());
            return 1;
        }
        ::usleep(10'000);
    }
    tcp_info before{};
    socklen_t len = sizeof(before);
    ::getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &before, &len);
    auto start = Clock::now();
    if (!send_stream(fd.get(), warmup, bytes)) return 1;
    if (!all_acked(fd.get(), deadline)) {
        std::printf("FAIL: the %llu-byte write was not acknowledged in time\n",
                    static_cast<unsigned long long>(bytes));
        return 1;
    }
    tcp_info after{};
    len = sizeof(after);
    ::getsockopt(fd.get(), IPPROTO_TCP, TCP_INFO, &after, &len);
    std::printf("wrote %llu bytes in one send, all acknowledged in %.1f ms, %u retransmissions\n",
                static_cast<unsigned long long>(bytes), ms_since(start),
                after.tcpi_total_retrans - before.tcpi_total_retrans);
    return 0;
}

int usage() {
    std::fputs(
        "usage:\n"
        "  nbtraffic udp-recv --bind ADDR --port P --count N --timeout-ms T [--order-any 1]\n"
        "                     [--max-gap-ms G]\n"
        "  nbtraffic udp-burst --dst ADDR --port P --count N --within-ms T [--size BYTES]\n"
        "  nbtraffic udp-sweep --from ADDR --hosts N --port P --within-ms T\n"
        "  nbtraffic tcp-listen --bind ADDR --port P [--count K] [--timeout-ms T]\n"
        "  nbtraffic tcp-connect --dst ADDR --port P --timeout-ms T\n"
        "  nbtraffic tcp-sink --bind ADDR --port P --bytes N --timeout-ms T\n"
        "  nbtraffic tcp-write --dst ADDR --port P --warmup W [--bytes N] --go-file F\n"
        "                      --timeout-ms T\n",
        stderr);
    return 2;
}

}  // namespace
}  // namespace nb

int main(int argc, char** argv) {
    if (argc < 2) return nb::usage();
    std::string_view cmd = argv[1];
    try {
        nb::Args args(argc, argv, 2);
        if (cmd == "udp-recv") return nb::udp_recv(args);
        if (cmd == "udp-burst") return nb::udp_burst(args);
        if (cmd == "udp-sweep") return nb::udp_sweep(args);
        if (cmd == "tcp-listen") return nb::tcp_listen(args);
        if (cmd == "tcp-connect") return nb::tcp_connect(args);
        if (cmd == "tcp-sink") return nb::tcp_sink(args);
        if (cmd == "tcp-write") return nb::tcp_write(args);
        std::fprintf(stderr, "unknown command '%s'\n", argv[1]);
        return nb::usage();
    } catch (const nb::UsageError& e) {
        std::fprintf(stderr, "nbtraffic %s: %s\n", argv[1], e.what());
        return 2;
    }
}
