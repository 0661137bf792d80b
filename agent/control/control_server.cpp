#include "agent/control/control_server.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/control/protocol.hpp"
#include "agent/control/request.hpp"
#include "base/blocking.hpp"
#include "base/errno_text.hpp"

namespace nb {

namespace {

std::string error_line(const std::string& message) {
    return nlohmann::json{{"ok", false}, {"error", message}}.dump(
        -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
        throw std::runtime_error("control socket path too long (" + std::to_string(path.size()) +
                                 " bytes, limit " + std::to_string(sizeof(addr.sun_path) - 1) +
                                 "): " + path);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// The run directory holds a root-only socket, so it must not be writable by anyone else
// (who could otherwise swap the socket for their own).
void prepare_run_dir(const std::string& dir) {
    std::error_code ec;
    const std::filesystem::path p(dir);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
        throw std::runtime_error("cannot create run directory " + dir + ": " + errno_text(errno));
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        throw std::runtime_error("cannot stat run directory " + dir + ": " + errno_text(errno));
    }
    if (!S_ISDIR(st.st_mode))
        throw std::runtime_error("run directory " + dir + " is not a directory");
    if (st.st_uid != ::geteuid()) {
        throw std::runtime_error("run directory " + dir + " is owned by uid " +
                                 std::to_string(st.st_uid) + ", not by this process");
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        throw std::runtime_error("run directory " + dir + " is writable by group or others");
    }
}

// True if something accepts connections on `path`.
bool socket_answers(const std::string& path) {
    const sockaddr_un addr = unix_address(path);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket(AF_UNIX): " + errno_text(errno));
    const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
    const int err = errno;
    ::close(fd);
    if (rc == 0) return true;
    // A full backlog (EAGAIN) still means a live listener.
    if (err == EAGAIN || err == EINPROGRESS) return true;
    if (err == ECONNREFUSED || err == ENOENT) return false;
    throw std::runtime_error("cannot probe existing control socket " + path + ": " +
                             errno_text(err));
}

}  // namespace

std::string ControlReply::take_text() && {
    if (!raw_) return json_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    // A newline inside the text would split the reply into two protocol lines.
    if (raw_->find('\n') != std::string::npos) {
        throw std::logic_error("internal error: raw control reply contains a newline");
    }
    return std::move(*raw_);
}

ControlServer::ControlServer(std::string run_dir, std::string interface, Handler handler)
    : run_dir_(std::move(run_dir)),
      interface_(std::move(interface)),
      path_(socket_path(run_dir_, interface_)),
      handler_(std::move(handler)) {
    const sockaddr_un addr = unix_address(path_);
    prepare_run_dir(run_dir_);

    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            throw std::runtime_error(path_ + " exists and is not a socket; refusing to replace it");
        }
        if (socket_answers(path_)) {
            throw std::runtime_error("another nbagent is already running on " + interface_);
        }
        spdlog::info("control: removing stale socket {}", path_);
        if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
            throw std::runtime_error("cannot remove stale socket " + path_ + ": " +
                                     errno_text(errno));
        }
    }

    listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) throw std::runtime_error("socket(AF_UNIX): " + errno_text(errno));
    auto fail = [&](const std::string& what) {
        const int err = errno;
        ::close(listen_fd_);
        listen_fd_ = -1;
        throw std::runtime_error(what + " " + path_ + ": " + errno_text(err));
    };
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        if (errno == EADDRINUSE) {
            ::close(listen_fd_);
            throw std::runtime_error("another nbagent is already running on " + interface_);
        }
        fail("cannot bind control socket");
    }
    if (::chmod(path_.c_str(), 0600) != 0) {
        ::unlink(path_.c_str());
        fail("cannot chmod control socket");
    }
    if (::listen(listen_fd_, 64) != 0) {
        ::unlink(path_.c_str());
        fail("cannot listen on control socket");
    }
    spdlog::debug("control: listening on {}", path_);
}

ControlServer::~ControlServer() {
    std::vector<ClientId> ids;
    for (const auto& [id, c] : clients_) ids.push_back(id);
    for (ClientId id : ids) close_client(id);
    if (listen_fd_ >= 0) {
        if (epoll_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
        ::close(listen_fd_);
        ::unlink(path_.c_str());
    }
}

void ControlServer::register_with(int epoll_fd) {
    epoll_fd_ = epoll_fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd_;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) {
        throw std::runtime_error("epoll_ctl(control socket): " + errno_text(errno));
    }
}

void ControlServer::handle_event(int fd, uint32_t events) {
    if (fd == listen_fd_) {
        accept_clients();
        return;
    }
    auto it = fd_to_client_.find(fd);
    if (it == fd_to_client_.end()) return;
    const ClientId id = it->second;
    if (events & (EPOLLERR | EPOLLHUP)) {
        // The peer is gone in both directions: nothing more can be delivered.
        close_client(id);
        return;
    }
    if (events & EPOLLOUT) {
        if (!flush(id)) return;
        process_lines(id);
        if (!clients_.count(id)) return;
    }
    if (events & EPOLLIN) on_readable(id);
}

void ControlServer::accept_clients() {
    for (;;) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) spdlog::warn("control: accept: {}", errno_text(errno));
            return;
        }
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != 0) {
            spdlog::warn("control: rejected connection from uid {} (the socket is root-only)",
                         cred.uid);
            const std::string line =
                error_line("permission denied: the control socket is root-only") + "\n";
            // Best effort: a fresh socket buffer always has room for one short line.
            (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            ::close(fd);
            continue;
        }
        const ClientId id = next_id_++;
        Client c;
        c.fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
            spdlog::warn("control: epoll_ctl(client): {}", errno_text(errno));
            ::close(fd);
            continue;
        }
        clients_.emplace(id, std::move(c));
        fd_to_client_.emplace(fd, id);
    }
}

void ControlServer::on_readable(ClientId id) {
    Client& c = clients_.at(id);
    char buf[64 * 1024];
    const ssize_t n = ::read(c.fd, buf, sizeof buf);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        close_client(id);
        return;
    }
    if (n == 0) {
        c.peer_eof = true;
    } else {
        c.in.append(buf, static_cast<size_t>(n));
    }
    process_lines(id);
}

void ControlServer::process_lines(ClientId id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    // One request at a time: the next is read only after the previous reply is sent.
    for (;;) {
        Client& c = it->second;
        if (c.closing || c.out_off < c.out.size()) break;
        // Searched from where the last search stopped: a big request arrives in many reads.
        const size_t nl = c.in.find('\n', c.in_scanned);
        c.in_scanned = nl == std::string::npos ? c.in.size() : 0;
        const size_t line_len = nl == std::string::npos ? c.in.size() : nl;
        const size_t limit = line_len > max_request_line_ && starts_as_apply(c.in)
                                 ? max_apply_line_
                                 : max_request_line_;
        if (nl == std::string::npos && c.in.size() <= limit) {
            if (!c.peer_eof) break;
            c.closing = true;
            if (c.in.empty()) break;
            // A last request without a newline (e.g. printf | socat) still counts.
            const std::string line = std::exchange(c.in, std::string());
            c.in_scanned = 0;
            std::string reply = handle_line(line, id);
            it = clients_.find(id);
            if (it == clients_.end()) return;
            queue(it->second, std::move(reply));
            break;
        }
        if (nl == std::string::npos || nl > limit) {
            queue(c, error_line("request line too long (limit " + std::to_string(limit) + " bytes" +
                                (limit == max_request_line_
                                     ? "; only an apply request, with \"cmd\" first, may be "
                                       "longer, up to " +
                                           std::to_string(max_apply_line_) + " bytes)"
                                     : ")")));
            c.in.clear();
            c.in_scanned = 0;
            c.closing = true;
            break;
        }
        std::string line = c.in.substr(0, nl);
        c.in.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        std::string reply = handle_line(line, id);
        // The handler may publish trace events, which can drop clients (even this one).
        it = clients_.find(id);
        if (it == clients_.end()) return;
        queue(it->second, std::move(reply));
        if (std::exchange(it->second.subscribe_after_reply, false)) {
            it->second.subscribed = true;
            ++subscribers_;
        }
        // Sent at once if the socket takes it; then the loop goes on with the next line
        // already buffered (no new EPOLLIN will announce it).
        if (!flush(id)) return;
    }
    flush(id);
}

std::string ControlServer::handle_line(std::string_view line, ClientId id) {
    ParsedRequest parsed = parse_request(line);
    if (!parsed.error.empty()) return error_line(parsed.error);
    // A long line got in as apply ({"cmd":"apply" first): a second "cmd" later, which
    // JSON lets win, must not make it another command.
    if (line.size() > max_request_line_ && !may_be_long(*parsed.request))
        return error_line("request line too long (limit " + std::to_string(max_request_line_) +
                          " bytes; only an apply request may be longer)");
    try {
        return handler_(*parsed.request, id).take_text();
    } catch (const std::exception& e) {
        return error_line(e.what());
    }
}

void ControlServer::queue(Client& c, std::string text) {
    if (c.out_off == c.out.size()) {
        // Nothing pending: take the text over instead of copying a possibly huge reply.
        c.out = std::move(text);
        c.out_off = 0;
    } else {
        if (c.out_off > c.out.size() / 2) {
            c.out.erase(0, c.out_off);
            c.out_off = 0;
        }
        c.out.append(text);
    }
    c.out.push_back('\n');
}

bool ControlServer::flush(ClientId id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return false;
    Client& c = it->second;
    if (c.out_off < c.out.size()) {
        // Never a wait (MSG_DONTWAIT: a slow client's reply stays queued), but the loop's
        // time copying replies into clients' sockets.
        BlockingTimer sending(BlockingKind::ControlClient);
        while (c.out_off < c.out.size()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                c.out_off += static_cast<size_t>(n);
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) break;
            close_client(id);
            return false;
        }
    }
    if (c.out_off == c.out.size()) {
        // Give back the memory of a large reply instead of keeping it per client.
        std::string().swap(c.out);
        c.out_off = 0;
    }
    update_interest(c);
    if (c.closing && c.out.empty()) {
        close_client(id);
        return false;
    }
    return true;
}

void ControlServer::update_interest(Client& c) {
    const bool pending = c.out_off < c.out.size();
    if (pending == c.want_out) return;
    epoll_event ev{};
    // While a reply is pending, stop reading: see the header on unbounded replies.
    ev.events = pending ? EPOLLOUT : EPOLLIN;
    ev.data.fd = c.fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev) != 0) {
        spdlog::warn("control: epoll_ctl(client): {}", errno_text(errno));
    }
    c.want_out = pending;
}

void ControlServer::close_client(ClientId id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    Client& c = it->second;
    if (epoll_fd_ >= 0) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    if (c.subscribed) --subscribers_;
    fd_to_client_.erase(c.fd);
    clients_.erase(it);
}

void ControlServer::subscribe_trace(ClientId client) {
    auto it = clients_.find(client);
    if (it == clients_.end() || it->second.subscribed) return;
    it->second.subscribe_after_reply = true;
}

void ControlServer::publish_trace(const nlohmann::json& event) {
    if (subscribers_ == 0) return;
    const std::string line = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::vector<ClientId> ids;
    for (const auto& [id, c] : clients_) {
        if (c.subscribed && !c.closing) ids.push_back(id);
    }
    for (ClientId id : ids) {
        Client& c = clients_.at(id);
        if (c.out.size() - c.out_off + line.size() + 1 > kMaxTraceBacklog) {
            spdlog::warn(
                "control: dropping trace subscriber that stopped reading ({} bytes queued)",
                c.out.size() - c.out_off);
            close_client(id);
            continue;
        }
        queue(c, line);
        flush(id);
    }
}

}  // namespace nb
