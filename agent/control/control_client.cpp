#include "agent/control/control_client.hpp"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "agent/control/protocol.hpp"

namespace nb {

namespace {

// A status of 100k peers is ~25 MB; anything far beyond that is not a sane reply.
constexpr size_t kMaxReplyLine = 1024 * 1024 * 1024;

[[noreturn]] void permission_denied(const std::string& path) {
    throw std::runtime_error("permission denied: the control socket " + path +
                             " is root-only (run as root)");
}

}  // namespace

std::string ControlClient::find_socket(const std::string& run_dir,
                                       const std::optional<std::string>& interface) {
    if (interface) {
        const std::string path = socket_path(run_dir, *interface);
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            if (errno == EACCES) permission_denied(path);
            throw std::runtime_error("no nbagent is running on " + *interface + " (no socket " +
                                     path + ")");
        }
        return path;
    }
    DIR* dir = ::opendir(run_dir.c_str());
    if (!dir) {
        if (errno == EACCES) permission_denied(run_dir + "/*.sock");
        throw std::runtime_error("no nbagent is running (no socket in " + run_dir + ")");
    }
    std::vector<std::string> names;
    while (const dirent* e = ::readdir(dir)) {
        std::string_view name(e->d_name);
        constexpr std::string_view kSuffix = ".sock";
        if (name.size() > kSuffix.size() && name.ends_with(kSuffix)) {
            names.emplace_back(name.substr(0, name.size() - kSuffix.size()));
        }
    }
    ::closedir(dir);
    if (names.empty()) {
        throw std::runtime_error("no nbagent is running (no socket in " + run_dir + ")");
    }
    if (names.size() > 1) {
        std::sort(names.begin(), names.end());
        std::string list;
        for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
        throw std::runtime_error("several nbagents are running (" + list +
                                 "); choose one with -i IFACE");
    }
    return socket_path(run_dir, names.front());
}

ControlClient::ControlClient(const std::string& path) : path_(path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
        throw std::runtime_error("control socket path too long: " + path);
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket(AF_UNIX): ") + std::strerror(errno));
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        const int err = errno;
        ::close(fd_);
        fd_ = -1;
        if (err == EACCES || err == EPERM) permission_denied(path);
        if (err == ENOENT)
            throw std::runtime_error("no nbagent is running (no socket " + path + ")");
        if (err == ECONNREFUSED) {
            throw std::runtime_error("no nbagent is running (stale socket " + path + ")");
        }
        throw std::runtime_error("cannot connect to " + path + ": " + std::strerror(err));
    }
}

ControlClient::~ControlClient() {
    if (fd_ >= 0) ::close(fd_);
}

void ControlClient::send_line(const std::string& line) {
    std::string data = line + "\n";
    size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        // The agent may already have answered and closed (e.g. a rejected peer): the
        // reply it left is more useful than EPIPE, so read it.
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return;
        if (n < 0)
            throw std::runtime_error(std::string("send to nbagent: ") + std::strerror(errno));
        off += static_cast<size_t>(n);
    }
}

std::string_view ControlClient::read_line() {
    constexpr size_t kChunk = 1024 * 1024;
    if (consumed_) {
        // The line returned last is done with: drop it (and its newline).
        std::memmove(buf_.data(), buf_.data() + consumed_, len_ - consumed_);
        len_ -= consumed_;
        consumed_ = 0;
    }
    for (;;) {
        const char* begin = buf_.data();
        const void* nlp = len_ ? std::memchr(begin + scanned_, '\n', len_ - scanned_) : nullptr;
        if (nlp) {
            const size_t nl = static_cast<size_t>(static_cast<const char*>(nlp) - begin);
            consumed_ = nl + 1;
            scanned_ = 0;
            return {begin, nl};
        }
        scanned_ = len_;
        if (len_ > kMaxReplyLine) throw std::runtime_error("reply from nbagent too large");
        buf_.reserve(len_ + kChunk);
        ssize_t n;
        do {
            n = ::recv(fd_, buf_.data() + len_, buf_.capacity() - len_, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            throw std::runtime_error(std::string("receive from nbagent: ") + std::strerror(errno));
        }
        if (n == 0) throw std::runtime_error("nbagent closed the connection");
        len_ += static_cast<size_t>(n);
    }
}

nlohmann::json ControlClient::check_reply(std::string_view line) {
    nlohmann::json reply = nlohmann::json::parse(line, nullptr, false);
    if (reply.is_discarded() || !reply.is_object()) {
        throw std::runtime_error("invalid reply from nbagent (not a JSON object)");
    }
    auto ok = reply.find("ok");
    if (ok == reply.end() || !ok->is_boolean()) {
        throw std::runtime_error("invalid reply from nbagent (no \"ok\")");
    }
    if (!ok->get<bool>()) {
        auto err = reply.find("error");
        if (err != reply.end() && err->is_string())
            throw std::runtime_error(err->get<std::string>());
        throw std::runtime_error("nbagent reported an error without a message");
    }
    return reply;
}

std::string_view ControlClient::request_text(const nlohmann::json& req) {
    // Text the caller read from a file may hold invalid UTF-8 (a Latin-1 comment).
    send_line(req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return read_line();
}

nlohmann::json ControlClient::request(const nlohmann::json& req) {
    return check_reply(request_text(req));
}

void ControlClient::stream(const nlohmann::json& req,
                           const std::function<bool(const nlohmann::json&)>& on_event,
                           const std::function<void(const nlohmann::json&)>& on_subscribed) {
    const nlohmann::json reply = request(req);
    // The agent subscribes us before it queues the reply: from here no event is missed.
    if (on_subscribed) on_subscribed(reply);
    for (;;) {
        const std::string_view line = read_line();
        nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
        if (event.is_discarded())
            throw std::runtime_error("invalid event from nbagent: " + std::string(line));
        if (!on_event(event)) return;
    }
}

}  // namespace nb
