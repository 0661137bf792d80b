#include "agent/engine/instance_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "base/net/netns.hpp"
#include "base/printable.hpp"

namespace nb::engine {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
    throw std::runtime_error(what + " " + printable(path) + ": " + std::strerror(errno));
}

// A directory on the lock's path, made if missing; only root (or the service's user)
// may put a lock there, so 0755 as /run/nbagent itself.
void make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) fail("cannot create", path);
}

// The holder wrote its PID; a reader can catch it between truncate and write: "".
std::string holder_pid(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string pid(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return pid;
}

}  // namespace

InstanceLock InstanceLock::acquire(const std::string& interface, const std::string& root) {
    // A name the kernel takes (IFNAMSIZ, no '/'), so the path stays in its directory.
    if (interface.empty() || interface.size() > 15 || interface.find('/') != interface.npos ||
        interface == "." || interface == "..")
        throw std::runtime_error(std::string("'") + printable(interface) +
                                 "' is not an interface name");
    make_dir(root);
    const std::string dir = root + "/" + netns_id();
    make_dir(dir);
    const std::string path = dir + "/" + interface + ".lock";
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (fd.get() < 0) fail("cannot open the instance lock", path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK) fail("cannot lock", path);
        const std::string pid = holder_pid(fd.get());
        throw std::runtime_error(std::string("another nbagent is already running on ") +
                                 printable(interface) + " in this network namespace (" +
                                 (pid.empty() ? std::string("pid unknown") : "pid " + pid) +
                                 "; lock " + printable(path) + ")");
    }
    const std::string mine = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd.get(), 0) != 0 ||
        ::pwrite(fd.get(), mine.data(), mine.size(), 0) != static_cast<ssize_t>(mine.size()))
        fail("cannot write the PID to", path);
    return InstanceLock(std::move(fd), path);
}

}  // namespace nb::engine
