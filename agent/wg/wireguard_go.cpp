#include "agent/wg/wireguard_go.hpp"

#include "base/spawn.hpp"
#include "base/unique_fd.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "agent/wg/uapi_control.hpp"

extern char** environ;

namespace nb {

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kStartTimeout = std::chrono::seconds(5);

bool is_executable_file(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           ::access(path.c_str(), X_OK) == 0;
}

// Empty if not found.
std::string resolve_program(const std::string& name) {
    if (name.find('/') != std::string::npos) return is_executable_file(name) ? name : "";
    const char* env = std::getenv("PATH");
    std::string path = env ? env : "/usr/local/bin:/usr/bin:/bin";
    std::size_t pos = 0;
    while (pos <= path.size()) {
        std::size_t colon = path.find(':', pos);
        if (colon == std::string::npos) colon = path.size();
        std::string dir = path.substr(pos, colon - pos);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
        if (is_executable_file(candidate)) return candidate;
        pos = colon + 1;
    }
    return "";
}

std::string read_all(int fd) {
    std::string out;
    char buf[4096];
    ::lseek(fd, 0, SEEK_SET);
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    // wireguard-go prints a long banner on Linux; the error is at the end.
    constexpr std::size_t kKeep = 2000;
    if (out.size() > kKeep) out = "..." + out.substr(out.size() - kKeep);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out.empty() ? "(no output)" : out;
}

bool drop_env(const char* entry) {
    // These would make wireguard-go stay in the foreground or reuse descriptors it was
    // never given; LOG_LEVEL would hand the daemon our capture file as its log forever.
    for (const char* name : {"WG_PROCESS_FOREGROUND=", "WG_TUN_FD=", "WG_UAPI_FD=", "LOG_LEVEL="})
        if (std::strncmp(entry, name, std::strlen(name)) == 0) return true;
    return false;
}

class SpawnActions {
  public:
    SpawnActions() { posix_spawn_file_actions_init(&fa_); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;
    ~SpawnActions() { posix_spawn_file_actions_destroy(&fa_); }
    posix_spawn_file_actions_t* get() { return &fa_; }

  private:
    posix_spawn_file_actions_t fa_;
};

}  // namespace

std::string wireguard_go_program() {
    const char* env = std::getenv("WG_QUICK_USERSPACE_IMPLEMENTATION");
    return env && *env ? env : "wireguard-go";
}

bool wireguard_go_available() {
    return !resolve_program(wireguard_go_program()).empty();
}

bool uapi_socket_exists(const std::string& interface, const std::string& socket_dir) {
    struct stat st {};
    std::string path = socket_dir + "/" + interface + ".sock";
    return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

void start_wireguard_go(const std::string& interface, const std::string& socket_dir) {
    if (interface.empty() || interface.size() >= IFNAMSIZ ||
        interface.find_first_of("/ \t\n:") != std::string::npos)
        throw WgError("invalid interface name '" + interface + "'");
    const std::string program = wireguard_go_program();
    const std::string path = resolve_program(program);
    if (path.empty())
        throw WgError("cannot start " + program + " for " + interface +
                      ": not found on PATH (install wireguard-go or set "
                      "WG_QUICK_USERSPACE_IMPLEMENTATION)");

    // A memfd, not a pipe: whatever the daemon keeps of our descriptors can never block
    // or SIGPIPE it.
    UniqueFd out(::memfd_create("wireguard-go-output", MFD_CLOEXEC));
    if (out.get() < 0) throw WgError(std::string("memfd_create: ") + std::strerror(errno));

    SpawnActions fa;
    posix_spawn_file_actions_addopen(fa.get(), 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(fa.get(), out.get(), 1);
    posix_spawn_file_actions_adddup2(fa.get(), out.get(), 2);
    // The daemon lives on after us: it must not hold the agent's sockets or BPF objects.
    spawn_close_from(fa.get(), 3);

    std::vector<char*> envp;
    for (char** e = environ; *e; ++e)
        if (!drop_env(*e)) envp.push_back(*e);
    envp.push_back(nullptr);
    std::string arg0 = program, arg1 = interface;
    char* argv[] = {arg0.data(), arg1.data(), nullptr};

    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, path.c_str(), fa.get(), nullptr, argv, envp.data());
    if (rc != 0) throw WgError("cannot run " + path + ": " + std::strerror(rc));

    // wireguard-go creates the tun device and UAPI socket, forks the daemon and exits.
    const auto deadline = Clock::now() + kStartTimeout;
    int status = 0;
    while (true) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR)
            throw WgError("waiting for " + path + ": " + std::strerror(errno));
        if (Clock::now() >= deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            throw WgError(program + " " + interface +
                          " did not finish starting within 5 s: " + read_all(out.get()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::string how = WIFEXITED(status)
                              ? "exited with status " + std::to_string(WEXITSTATUS(status))
                              : "was killed by signal " + std::to_string(WTERMSIG(status));
        throw WgError(program + " " + interface + " " + how + ": " + read_all(out.get()));
    }

    UapiControl control(interface, socket_dir);
    control.set_timeout(std::chrono::milliseconds(500));
    std::string last_error;
    while (Clock::now() < deadline) {
        try {
            control.get_device();
            return;
        } catch (const WgError& e) {
            last_error = e.what();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw WgError(program + " " + interface + " started but its UAPI socket does not answer (" +
                  last_error + "); its output: " + read_all(out.get()));
}

}  // namespace nb
