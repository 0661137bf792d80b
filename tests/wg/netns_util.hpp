// Network-namespace helpers for the wg/rtnl tests: a uniquely named namespace that is
// always deleted, and running code inside it on a dedicated thread (setns(CLONE_NEWNET)
// only moves the calling thread, so the test's own thread never changes namespace).
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace nb::test {

struct CmdResult {
    int status = -1;  // exit status, -1 if it did not exit normally
    std::string out;  // stdout and stderr
};

inline CmdResult run_cmd(const std::string& cmd) {
    CmdResult r;
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

class NetNs {
  public:
    explicit NetNs(const std::string& tag)
        : name_("nbt-wg-" + tag + "-" + std::to_string(::getpid())) {
        run_cmd("ip netns del " + name_);  // a leftover from a crashed run with our pid
        CmdResult r = run_cmd("ip netns add " + name_);
        if (r.status != 0) throw std::runtime_error("ip netns add " + name_ + ": " + r.out);
    }
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;
    ~NetNs() { run_cmd("ip netns del " + name_); }

    const std::string& name() const { return name_; }
    // "ip netns exec <ns> <cmd>" and "ip -n <ns> <args>" shorthands.
    CmdResult exec(const std::string& cmd) const {
        return run_cmd("ip netns exec " + name_ + " " + cmd);
    }
    CmdResult ip(const std::string& args) const { return run_cmd("ip -n " + name_ + " " + args); }

    // Runs fn on a thread that has entered the namespace; rethrows what fn throws.
    void run_inside(const std::function<void()>& fn) const {
        std::exception_ptr failure;
        std::thread t([&] {
            try {
                int fd = ::open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) throw std::runtime_error("open netns: " + std::string(strerror(errno)));
                int rc = ::setns(fd, CLONE_NEWNET);
                int err = errno;
                ::close(fd);
                if (rc != 0) throw std::runtime_error("setns: " + std::string(strerror(err)));
                fn();
            } catch (...) {
                failure = std::current_exception();
            }
        });
        t.join();
        if (failure) std::rethrow_exception(failure);
    }

  private:
    std::string name_;
};

}  // namespace nb::test
