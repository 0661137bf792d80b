#include "agent/activity/udp_trigger.hpp"

#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/activity/checksum.hpp"

namespace nb {

namespace {

constexpr uint8_t kHandshakeInitiation = 1;  // WireGuard message type
constexpr size_t kInitiationSize = 148;

// The ephemeral port range binding to port 0 draws from.
std::pair<uint32_t, uint32_t> ephemeral_ports() {
    std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
    uint32_t lo = 32768, hi = 60999;
    if (!(f >> lo >> hi) || hi < lo) return {32768, 60999};
    return {lo, hi};
}

uint32_t default_per_address() {
    auto [lo, hi] = ephemeral_ports();
    // Half the range: the other half stays for everything else bound to that address.
    return std::max<uint32_t>(1, (hi - lo + 1) / 2);
}

}  // namespace

IpAddr udp_listener_address(uint32_t index, uint32_t per_address) {
    uint32_t host = 0x7f010001u + index / std::max<uint32_t>(per_address, 1);  // 127.1.0.1 +
    IpAddr a;
    a.family = AF_INET;
    a.bytes[0] = static_cast<uint8_t>(host >> 24);
    a.bytes[1] = static_cast<uint8_t>(host >> 16);
    a.bytes[2] = static_cast<uint8_t>(host >> 8);
    a.bytes[3] = static_cast<uint8_t>(host);
    return a;
}

std::vector<std::string> check_udp_listener_limits(uint64_t count) {
    std::vector<std::string> warnings;
    // 127.1.0.1 .. 127.255.255.254 is the room there is.
    uint64_t per = default_per_address();
    if (count / per + 1 >= (0x7fffffffu - 0x7f010001u))
        throw std::runtime_error(std::to_string(count) +
                                 " UDP listeners do not fit 127.1.0.0-127.255.255.255");
    // One fd per idle peer, and room for the rest of the agent.
    uint64_t need = count + 1024;
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        // The soft limit goes up to the hard one; a hard limit too low goes up as well,
        // which root may (CAP_SYS_RESOURCE, up to fs.nr_open).
        bool hard_too_low = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need;
        rlimit want = rl;
        want.rlim_cur = hard_too_low || rl.rlim_max == RLIM_INFINITY ? need : rl.rlim_max;
        if (hard_too_low) want.rlim_max = need;
        if (setrlimit(RLIMIT_NOFILE, &want) != 0)
            throw std::runtime_error(
                std::to_string(count) + " idle peers need " + std::to_string(need) +
                " open files with the UDP trigger engine, but the limit is " +
                std::to_string(rl.rlim_cur) + " and the hard limit is " +
                std::to_string(rl.rlim_max) + "; raising it failed (" + std::strerror(errno) +
                "; raise it: ulimit -Hn, LimitNOFILE= in the service, fs.nr_open)");
        warnings.push_back("raised the open-file limit from " + std::to_string(rl.rlim_cur) +
                           " (hard " + std::to_string(rl.rlim_max) + ") to " +
                           std::to_string(want.rlim_cur) + " for " + std::to_string(count) +
                           " UDP listeners");
    }
    auto [lo, hi] = ephemeral_ports();
    if (hi - lo + 1 < 1024)
        warnings.push_back("the ephemeral port range " + std::to_string(lo) + "-" +
                           std::to_string(hi) +
                           " is small: listeners spread over more 127.x addresses");
    return warnings;
}

UdpTrigger::UdpTrigger(Options opts, TriggerFn on_trigger)
    : opts_(opts), on_trigger_(std::move(on_trigger)) {
    if (opts_.per_address == 0) opts_.per_address = default_per_address();
    ep_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
    if (ep_.get() < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    // Non-blocking: an initiation to an endpoint whose neighbour does not resolve waits
    // in the neighbour queue, charged to this socket, for seconds; a full send buffer
    // must not stall the event loop and every other trigger behind it.
    raw4_ = UniqueFd(socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW));
    if (raw4_.get() < 0)
        throw std::system_error(errno, std::generic_category(),
                                "a raw socket to forward handshake initiations");
    raw6_ = UniqueFd(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW));
    listeners_.resize(opts_.capacity);
    modes_.assign(opts_.capacity, SlotMode::Pass);
}

UdpTrigger::~UdpTrigger() {
    for (uint32_t id = 0; id < listeners_.size(); ++id) close_listener(id);
}

void UdpTrigger::set_wireguard_source(uint16_t listen_port, uint32_t fwmark) {
    wg_port_ = listen_port;
    wg_fwmark_ = fwmark;
    // Routed like WireGuard's own packets (policy routing on the fwmark).
    for (int fd : {raw4_.get(), raw6_.get()}) {
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &fwmark, sizeof(fwmark)) != 0 &&
            fwmark != 0)
            spdlog::warn("fwmark {} on the forwarding socket: {}", fwmark, std::strerror(errno));
    }
}

void UdpTrigger::open_listener(uint32_t id) {
    if (id >= listeners_.size())
        throw std::out_of_range("peer id beyond the UDP engine's capacity");
    Listener& l = listeners_[id];
    if (l.fd >= 0) return;
    UniqueFd fd, taken;
    SockAddr a;
    for (;;) {
        fd = UniqueFd(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (fd.get() < 0)
            throw std::system_error(errno, std::generic_category(), "a UDP listener socket");
        // Port 0: the kernel picks a free port on this address, so nothing else that
        // listens on loopback is in the way.
        a = SockAddr::from(udp_listener_address(id, opts_.per_address), 0);
        if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&a.ss), a.len) != 0)
            throw std::system_error(errno, std::generic_category(),
                                    "binding a UDP listener on " + a.ip().str());
        a.len = sizeof(a.ss);
        getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a.ss), &a.len);
        if (a.port() != reserved_port_ || taken.get() >= 0) break;
        // WireGuard's port: keep it bound while asking again, so the kernel picks
        // another; then let it go.
        taken = std::move(fd);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = id;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl on a UDP listener");
    l.fd = fd.get();
    l.addr = a;
    fd.release();
    ++open_;
}

bool UdpTrigger::port_in_use(uint16_t port) const {
    for (const auto& l : listeners_)
        if (l.fd >= 0 && l.addr.port() == port) return true;
    return false;
}

void UdpTrigger::close_listener(uint32_t id) {
    if (id >= listeners_.size()) return;
    Listener& l = listeners_[id];
    if (l.fd < 0) return;
    ::close(l.fd);  // also leaves the epoll set
    l.fd = -1;
    --open_;
}

void UdpTrigger::install_peer(uint32_t id, std::span<const IpPrefix>, SlotMode mode) {
    set_mode(id, mode);
}

void UdpTrigger::remove_peer(uint32_t id, std::span<const IpPrefix>) {
    close_listener(id);
    captured_.erase(id);
    if (id < modes_.size()) modes_[id] = SlotMode::Pass;
}

SlotMode UdpTrigger::set_mode(uint32_t id, SlotMode mode) {
    if (id >= modes_.size()) throw std::out_of_range("peer id beyond the UDP engine's capacity");
    SlotMode old = modes_[id];
    modes_[id] = mode;
    // Idle: listening. Otherwise WireGuard has the real endpoint and the socket goes.
    if (mode == SlotMode::Hold) {
        open_listener(id);
    } else {
        close_listener(id);
        if (mode == SlotMode::Pass) captured_.erase(id);
    }
    return old;
}

std::optional<SockAddr> UdpTrigger::idle_endpoint(uint32_t id) {
    open_listener(id);
    return listeners_[id].addr;
}

int UdpTrigger::consume() {
    int triggers = 0;
    epoll_event evs[256];
    int n;
    while ((n = epoll_wait(ep_.get(), evs, 256, 0)) > 0) {
        for (int i = 0; i < n; ++i) {
            auto id = static_cast<uint32_t>(evs[i].data.u64);
            if (id >= listeners_.size() || listeners_[id].fd < 0) continue;
            uint8_t buf[2048];
            bool trigger = false;
            for (;;) {
                ssize_t len = recv(listeners_[id].fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (len < 0) break;
                // Only WireGuard talks to this port, and it only ever sends an idle peer
                // its handshake initiation; anything else is not a trigger.
                if (static_cast<size_t>(len) != kInitiationSize || buf[0] != kHandshakeInitiation)
                    continue;
                auto& c = captured_[id];
                std::memcpy(c.data(), buf, kInitiationSize);
                trigger = true;
            }
            if (trigger) {
                ++triggers;
                on_trigger_(id);
            }
        }
        if (n < 256) break;
    }
    return triggers;
}

void UdpTrigger::endpoint_set(uint32_t id, const SockAddr& ep) {
    auto it = captured_.find(id);
    if (it == captured_.end()) return;  // woken by a group or the remote: nothing caught
    if (!opts_.forward_initiation) {
        captured_.erase(it);
        return;
    }
    try {
        forward(it->second, ep);
    } catch (const std::exception& e) {
        // WireGuard retries its handshake within 5 s anyway.
        spdlog::warn("forwarding the handshake initiation to {}: {}", ep.str(), e.what());
    }
    captured_.erase(it);
}

void UdpTrigger::forward(const std::array<uint8_t, 148>& initiation, const SockAddr& ep) {
    if (wg_port_ == 0) throw std::runtime_error("WireGuard's listen port is not known");
    // The source address the kernel would pick for WireGuard's own packet.
    UniqueFd probe(socket(ep.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (probe.get() < 0) throw std::system_error(errno, std::generic_category(), "socket");
    if (wg_fwmark_) setsockopt(probe.get(), SOL_SOCKET, SO_MARK, &wg_fwmark_, sizeof(wg_fwmark_));
    if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&ep.ss), ep.len) != 0)
        throw std::system_error(errno, std::generic_category(), "no route");
    SockAddr src;
    src.len = sizeof(src.ss);
    getsockname(probe.get(), reinterpret_cast<sockaddr*>(&src.ss), &src.len);

    // IP + UDP + the initiation, from WireGuard's port: the response goes to WireGuard,
    // which is waiting for exactly this handshake.
    std::vector<uint8_t> pkt;
    size_t ip_len = ep.family() == AF_INET ? sizeof(iphdr) : sizeof(ip6_hdr);
    size_t udp_len = sizeof(udphdr) + initiation.size();
    pkt.resize(ip_len + udp_len);
    IpAddr s = src.ip(), d = ep.ip();
    if (ep.family() == AF_INET) {
        auto* ip = reinterpret_cast<iphdr*>(pkt.data());
        ip->version = 4;
        ip->ihl = 5;
        ip->tot_len = htons(static_cast<uint16_t>(pkt.size()));
        ip->ttl = 64;
        ip->protocol = IPPROTO_UDP;
        std::memcpy(&ip->saddr, s.bytes.data(), 4);
        std::memcpy(&ip->daddr, d.bytes.data(), 4);
        // The kernel fills id and header checksum for IPPROTO_RAW.
    } else {
        auto* ip6 = reinterpret_cast<ip6_hdr*>(pkt.data());
        ip6->ip6_flow = htonl(6u << 28);
        ip6->ip6_plen = htons(static_cast<uint16_t>(udp_len));
        ip6->ip6_nxt = IPPROTO_UDP;
        ip6->ip6_hlim = 64;
        std::memcpy(&ip6->ip6_src, s.bytes.data(), 16);
        std::memcpy(&ip6->ip6_dst, d.bytes.data(), 16);
    }
    auto* udp = reinterpret_cast<udphdr*>(pkt.data() + ip_len);
    udp->source = htons(wg_port_);
    udp->dest = htons(ep.port());
    udp->len = htons(static_cast<uint16_t>(udp_len));
    std::memcpy(pkt.data() + ip_len + sizeof(udphdr), initiation.data(), initiation.size());
    fix_transport_checksum(pkt);

    int fd = ep.family() == AF_INET ? raw4_.get() : raw6_.get();
    if (fd < 0) throw std::runtime_error("no raw IPv6 socket");
    // Port 0: a raw IPv6 socket reads the port as a protocol number.
    SockAddr to = SockAddr::from(d, 0);
    if (sendto(fd, pkt.data(), pkt.size(), 0, reinterpret_cast<const sockaddr*>(&to.ss), to.len) <
        0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            ++forward_skipped_;  // WireGuard retransmits the initiation itself within 5 s
            return;
        }
        throw std::system_error(errno, std::generic_category(), "sendto");
    }
    ++forwarded_;
}

}  // namespace nb
