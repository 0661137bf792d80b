#include "agent/connector/connector.hpp"

#include "base/blocking.hpp"
#include "base/printable.hpp"
#include "base/spawn.hpp"
#include "base/text.hpp"
#include "base/unique_fd.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace nb {

namespace {

constexpr size_t kMaxOutput = 4096;      // bytes of stdout/stderr kept per run
constexpr size_t kMaxDrain = 64 * 1024;  // bytes read per wakeup
constexpr size_t kMaxQuoted = 200;       // chars of command output quoted in errors

[[noreturn]] void throw_errno(const char* what) {
    throw std::system_error(errno, std::generic_category(), what);
}

struct Pipe {
    UniqueFd read_end, write_end;
};

// Both ends close-on-exec; the read end is non-blocking so we can drain it after the
// command ended, the write end stays blocking for the command.
Pipe make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
    if (::fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) throw_errno("fcntl(O_NONBLOCK)");
    return p;
}

// Reads what is available, at most `limit` bytes per call so a chatty command cannot
// keep us from checking the deadline; keeps the first kMaxOutput bytes. Returns false
// at EOF.
bool read_available(int fd, std::string& buf, size_t limit = kMaxDrain) {
    char chunk[4096];
    while (limit > 0) {
        ssize_t n = ::read(fd, chunk, std::min(sizeof chunk, limit));
        if (n > 0) {
            limit -= static_cast<size_t>(n);
            size_t keep = std::min(static_cast<size_t>(n), kMaxOutput - buf.size());
            buf.append(chunk, keep);
            continue;
        }
        if (n == 0) return false;
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return true;
        throw_errno("read from exec connector");
    }
    return true;
}

std::string first_nonempty_line(std::string_view text) {
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = trim(text.substr(0, nl));
        if (!line.empty()) return std::string(line.substr(0, kMaxQuoted));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    return {};
}

// The spawned shell's process group. Until the leader is reaped its pid cannot be
// reused, so killing the group by that number is safe; the destructor guarantees the
// group is killed and the leader reaped on every path.
class Child {
  public:
    explicit Child(pid_t pid) : pid_(pid) {}
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    ~Child() {
        if (pid_ > 0) {
            kill_group();
            reap();
        }
    }
    void kill_group() { ::kill(-pid_, SIGKILL); }
    int reap() {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        return status;
    }
    pid_t pid() const { return pid_; }

  private:
    pid_t pid_;
};

class SpawnSetup {
  public:
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
};

std::vector<std::string> child_environment(const ConnectRequest& req) {
    static constexpr std::string_view ours[] = {
        "NB_PEER_PUBLIC_KEY=", "NB_INTERFACE=", "NB_CONFIGURED_ENDPOINT="};
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view var(*e);
        bool shadowed = false;
        for (auto prefix : ours) shadowed = shadowed || var.starts_with(prefix);
        if (!shadowed) env.emplace_back(var);
    }
    env.push_back("NB_PEER_PUBLIC_KEY=" + req.peer.base64());
    env.push_back("NB_INTERFACE=" + req.interface);
    if (req.configured_endpoint)
        env.push_back("NB_CONFIGURED_ENDPOINT=" + *req.configured_endpoint);
    return env;
}

// Runs `sh -c command` in a process group of its own, stdin from /dev/null and
// stdout/stderr into the pipes. Returns posix_spawn's error (0: `pid` is set).
int spawn_shell(const std::string& command, std::vector<std::string>& env, const Pipe& out,
                const Pipe& err, pid_t& pid) {
    std::vector<char*> envp;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::string arg0 = "sh", arg1 = "-c", arg2 = command;
    char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
    SpawnSetup s;
    // posix_spawn (vfork-like clone in glibc) is safe in a threaded process;
    // closefrom also closes fds other threads opened without O_CLOEXEC.
    posix_spawn_file_actions_addopen(&s.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&s.actions, out.write_end.get(), 1);
    posix_spawn_file_actions_adddup2(&s.actions, err.write_end.get(), 2);
    spawn_close_from(&s.actions, 3);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setflags(
        &s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&s.attr, 0);
    posix_spawnattr_setsigmask(&s.attr, &none);
    posix_spawnattr_setsigdefault(&s.attr, &all);
    return ::posix_spawn(&pid, "/bin/sh", &s.actions, &s.attr, argv, envp.data());
}

// How a command run ended, with what it printed.
struct RunOutcome {
    std::string out, err;
    bool exited = false;   // before the deadline
    bool stopped = false;  // the request was stopped (agent shutting down)
    int status = 0;        // waitpid's, once reaped
};

// Reads the command's output until it exits, the deadline passes or the request is
// stopped; then kills what is left of its group and reaps it.
RunOutcome await_command(Child& child, Pipe& out, Pipe& err, const UniqueFd& stop_fd,
                         const std::stop_token& stop,
                         std::chrono::steady_clock::time_point deadline) {
    // Raw syscall: glibc 2.36's <sys/pidfd.h> lacks C linkage for C++.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child.pid(), 0)));
    if (pidfd.get() < 0) throw_errno("pidfd_open");
    RunOutcome o;
    bool out_open = true, err_open = true;
    {
        std::stop_callback on_stop(stop, [&stop_fd] {
            uint64_t one = 1;
            [[maybe_unused]] ssize_t n = ::write(stop_fd.get(), &one, sizeof one);
        });
        while (!o.exited && !o.stopped) {
            auto left = deadline - std::chrono::steady_clock::now();
            if (left <= left.zero()) break;
            pollfd fds[4] = {{out_open ? out.read_end.get() : -1, POLLIN, 0},
                             {err_open ? err.read_end.get() : -1, POLLIN, 0},
                             {pidfd.get(), POLLIN, 0},
                             {stop_fd.get(), POLLIN, 0}};
            int ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
            if (::poll(fds, 4, ms) < 0) {
                if (errno == EINTR) continue;
                throw_errno("poll");
            }
            if (fds[0].revents) out_open = read_available(fds[0].fd, o.out);
            if (fds[1].revents) err_open = read_available(fds[1].fd, o.err);
            o.exited = fds[2].revents != 0;
            o.stopped = fds[3].revents != 0;
        }
    }
    // Leftovers in the group (background jobs) go too; the leader is not reaped
    // yet, so the group id is still ours.
    child.kill_group();
    if (out_open) read_available(out.read_end.get(), o.out);
    if (err_open) read_available(err.read_end.get(), o.err);
    o.status = child.reap();
    return o;
}

class StaticConnector final : public Connector {
  public:
    std::string name() const override { return "static"; }
    ConnectResult connect(const ConnectRequest& req) override {
        if (!req.configured_endpoint) return {std::nullopt, "peer has no Endpoint in the config"};
        return resolve_endpoint(*req.configured_endpoint);
    }
};

class ExecConnector final : public Connector {
  public:
    ExecConnector(std::string command, std::chrono::milliseconds timeout)
        : command_(std::move(command)), timeout_(timeout) {}

    std::string name() const override { return "exec"; }

    ConnectResult connect(const ConnectRequest& req) override {
        try {
            return run(req);
        } catch (const std::system_error& e) {
            return {std::nullopt, std::string("exec connector: ") + e.what()};
        }
    }

  private:
    ConnectResult run(const ConnectRequest& req) {
        const auto deadline = std::chrono::steady_clock::now() + timeout_;
        Pipe out = make_pipe();
        Pipe err = make_pipe();
        // Written by the stop callback so a shutdown wakes the poll in await_command.
        UniqueFd stop_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (stop_fd.get() < 0) throw_errno("eventfd");

        std::vector<std::string> env = child_environment(req);
        pid_t pid = -1;
        if (int rc = spawn_shell(command_, env, out, err, pid); rc != 0)
            return {std::nullopt,
                    std::string("exec connector: cannot run /bin/sh: ") + std::strerror(rc)};
        Child child(pid);
        out.write_end.reset();
        err.write_end.reset();
        return result_of(await_command(child, out, err, stop_fd, req.stop, deadline));
    }

    // The endpoint the command printed, or why there is none.
    ConnectResult result_of(const RunOutcome& o) const {
        if (o.stopped) return {std::nullopt, "exec connector stopped: agent is shutting down"};
        if (!o.exited) {
            return {std::nullopt,
                    "exec connector timed out after " + std::to_string(timeout_.count()) + " ms"};
        }
        std::string stderr_line = printable(first_nonempty_line(o.err), kMaxQuoted);
        std::string detail = stderr_line.empty() ? "" : ": " + stderr_line;
        if (WIFSIGNALED(o.status)) {
            return {std::nullopt, "exec connector killed by signal " +
                                      std::to_string(WTERMSIG(o.status)) + detail};
        }
        if (WEXITSTATUS(o.status) != 0) {
            return {std::nullopt, "exec connector exited with status " +
                                      std::to_string(WEXITSTATUS(o.status)) + detail};
        }
        std::string line = first_nonempty_line(o.out);
        if (line.empty()) return {std::nullopt, "exec connector printed no endpoint"};
        ConnectResult r = resolve_endpoint(line);
        if (!r.endpoint)
            r.error = "exec connector printed '" + printable(line, kMaxQuoted) + "': " + r.error;
        return r;
    }

    std::string command_;
    std::chrono::milliseconds timeout_;
};

}  // namespace

ConnectResult resolve_endpoint(std::string_view host_port) {
    if (auto sa = SockAddr::parse_numeric(host_port)) return {*sa, {}};
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(host_port, host, port)) {
        return {std::nullopt,
                "invalid endpoint '" + printable(host_port, kMaxQuoted) + "' (expected host:port)"};
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_protocol = IPPROTO_UDP;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    int rc;
    {
        // On the loop for a host name in a network map; on the pool's threads, not counted.
        BlockingTimer waiting(BlockingKind::Dns);
        rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    }
    if (rc != 0) {
        std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
        return {std::nullopt, "cannot resolve '" + printable(host, kMaxQuoted) + "': " + why};
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    for (const addrinfo* ai = res; ai; ai = ai->ai_next) {
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
            ai->ai_addrlen <= sizeof(SockAddr::Storage)) {
            SockAddr sa;
            std::memcpy(&sa.ss, ai->ai_addr, ai->ai_addrlen);
            sa.len = ai->ai_addrlen;
            return {sa, {}};
        }
    }
    return {std::nullopt,
            "cannot resolve '" + printable(host, kMaxQuoted) + "': no IPv4 or IPv6 address"};
}

std::unique_ptr<Connector> make_static_connector() {
    return std::make_unique<StaticConnector>();
}

std::unique_ptr<Connector> make_exec_connector(std::string command,
                                               std::chrono::milliseconds timeout) {
    if (command.empty()) throw std::invalid_argument("exec connector needs a command");
    if (timeout <= timeout.zero()) {
        throw std::invalid_argument("exec connector timeout must be positive, got " +
                                    std::to_string(timeout.count()) + " ms");
    }
    return std::make_unique<ExecConnector>(std::move(command), timeout);
}

std::optional<ConnectorSpec> parse_connector_spec(std::string_view text) {
    const size_t colon = text.find(':');
    const auto kind = parse_enum<ConnectorKind>(text.substr(0, colon));
    if (!kind) return std::nullopt;
    // Only exec takes a command, and must have one.
    const bool has_command = colon != std::string_view::npos;
    if (has_command != (*kind == ConnectorKind::Exec)) return std::nullopt;
    ConnectorSpec spec{*kind, {}};
    if (has_command) {
        spec.command = text.substr(colon + 1);
        if (trim(spec.command).empty()) return std::nullopt;
    }
    return spec;
}

std::string connector_spellings() {
    std::string out;
    const size_t n = std::size(kConnectorKindNames);
    for (size_t i = 0; i < n; ++i) {
        if (i) out += i + 1 == n ? " or " : ", ";
        out += kConnectorKindNames[i].name;
        if (kConnectorKindNames[i].value == ConnectorKind::Exec) out += ":<command>";
    }
    return out;
}

std::unique_ptr<Connector> make_connector(const std::optional<std::string>& spec,
                                          const ConnectorContext& context) {
    if (!spec) return make_static_connector();
    const auto parsed = parse_connector_spec(*spec);
    if (!parsed)
        throw std::invalid_argument("unknown connector '" + *spec + "' (expected " +
                                    connector_spellings() + ")");
    switch (parsed->kind) {
        case ConnectorKind::Static:
            return make_static_connector();
        case ConnectorKind::Exec:
            return make_exec_connector(parsed->command, context.exec_timeout);
        case ConnectorKind::Etcd:
            if (!context.fleet)
                throw std::invalid_argument("connector etcd needs a store (run --etcd-endpoints)");
            return make_fleet_connector(context.fleet);
    }
    throw std::invalid_argument("unknown connector '" + *spec + "'");
}

}  // namespace nb
