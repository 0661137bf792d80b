#include "agent/wg/uapi_exchange.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace nb {

namespace {

// A whole device dump of 2^16 peers (wireguard-go's maximum) with a few allowed IPs
// each is tens of MiB; anything far beyond that is a broken daemon, not data.
constexpr std::size_t kMaxReplyBytes = 256u << 20;

uint64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

UapiExchange::UapiExchange(const std::string& socket_path, std::string request,
                           std::chrono::milliseconds connect_timeout)
    : request_(std::move(request)), started_ns_(now_ns()) {
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(sun.sun_path)) throw WgError("path too long");
    std::memcpy(sun.sun_path, socket_path.c_str(), socket_path.size() + 1);
    fd_ = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd_.get() < 0) throw WgError(std::string("socket: ") + std::strerror(errno));
    // For AF_UNIX the send timeout bounds connect(); sends and receives below never block.
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(connect_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((connect_timeout.count() % 1000) * 1000);
    if (::setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
        throw WgError(std::string("setsockopt: ") + std::strerror(errno));
    int rc;
    do {
        rc = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&sun), sizeof sun);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int err = errno;
        WgFault fault = err == ENOENT || err == ECONNREFUSED ? WgFault::Gone
                        : err == EAGAIN                      ? WgFault::NoAnswer
                                                             : WgFault::Rejected;
        throw WgError(std::strerror(err), fault);
    }
}

void UapiExchange::fail(std::string why, WgFault fault) {
    error_ = std::move(why);
    fault_ = fault;
    state_ = State::Failed;
    fd_.reset();
}

bool UapiExchange::receive() {
    char buf[65536];
    while (true) {
        ssize_t n = ::recv(fd_.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
        if (n < 0) {
            fail(std::string("recv: ") + std::strerror(errno));
            return true;
        }
        if (n == 0) {
            if (send_error_ != 0 && reply_.empty())
                fail(std::string("send: ") + std::strerror(send_error_));
            else
                fail("reply truncated: connection closed after " + std::to_string(reply_.size()) +
                     " bytes");
            return true;
        }
        std::size_t scan_from = reply_.empty() ? 0 : reply_.size() - 1;
        reply_.append(buf, static_cast<std::size_t>(n));
        if (reply_.size() > kMaxReplyBytes) {
            fail("reply exceeds 256 MiB");
            return true;
        }
        // Keys and values are never empty, so the first blank line ends the reply.
        std::size_t end = reply_.front() == '\n' ? 0 : reply_.find("\n\n", scan_from);
        if (end == std::string::npos) continue;
        std::size_t len = reply_.front() == '\n' ? 1 : end + 2;
        if (len != reply_.size()) {
            fail("data after the end of the reply");
            return true;
        }
        state_ = State::Done;
        fd_.reset();
        return true;
    }
}

UapiExchange::State UapiExchange::run(std::chrono::milliseconds idle) {
    uint64_t deadline = now_ns() + static_cast<uint64_t>(idle.count()) * 1000000ull;
    while (state_ == State::Pending) {
        bool moved = false;
        while (off_ < request_.size()) {
            ssize_t n = ::send(fd_.get(), request_.data() + off_, request_.size() - off_,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
            if (n < 0) {
                // wireguard-go answers a bad line at once and closes; its reply says why.
                send_error_ = errno;
                off_ = request_.size();
                break;
            }
            off_ += static_cast<std::size_t>(n);
            moved = true;
        }
        std::size_t had = reply_.size();
        if (receive()) break;
        moved = moved || reply_.size() != had;
        uint64_t now = now_ns();
        if (moved) deadline = now + static_cast<uint64_t>(idle.count()) * 1000000ull;
        if (now >= deadline) break;
        pollfd p{fd_.get(), static_cast<short>(POLLIN | (sent_all() ? 0 : POLLOUT)), 0};
        int wait_ms = static_cast<int>(std::max<uint64_t>(1, (deadline - now + 999999) / 1000000));
        if (::poll(&p, 1, wait_ms) < 0 && errno != EINTR) {
            fail(std::string("poll: ") + std::strerror(errno));
            break;
        }
    }
    return state_;
}

int64_t uapi_set_reply_errno(std::string_view reply) {
    // A complete reply ends in the blank line; only "errno=N" may precede it.
    std::string_view line = reply.substr(0, reply.size() >= 2 ? reply.size() - 2 : 0);
    int64_t code = 0;
    if (line.starts_with("errno=")) {
        std::string_view v = line.substr(6);
        auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), code, 10);
        if (ec == std::errc() && ptr == v.data() + v.size() && !v.empty()) return code;
    }
    std::string shown;
    for (char c : line.substr(0, 80)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (line.size() > 80) shown += "...";
    throw WgError("malformed UAPI set reply '" + shown + "'");
}

}  // namespace nb
