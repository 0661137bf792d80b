// One agent per interface and network namespace, whatever its --run-dir: an exclusive
// flock on LOCK_ROOT/net-<netns inode>/<interface>.lock, held for the agent's life. The
// kernel drops it when the process ends, crash or not, so nothing stale is left to clean.
// Network namespaces share /run (ip netns exec keeps it), so the namespace is in the
// path: two namespaces, each with its own wg0, each get an agent.
#pragma once

#include <string>

#include "base/net/netns.hpp"  // netns_id: the lock path names it
#include "base/unique_fd.hpp"

namespace nb::engine {

inline constexpr const char* kLockRoot = "/run/nbagent";

class InstanceLock {
  public:
    // Throws std::runtime_error: "another nbagent is already running on wg0 in this
    // network namespace (pid N; lock PATH)" when another holds it, or what kept the lock
    // from being made.
    static InstanceLock acquire(const std::string& interface, const std::string& root = kLockRoot);
    const std::string& path() const { return path_; }

  private:
    InstanceLock(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
    UniqueFd fd_;
    std::string path_;
};

}  // namespace nb::engine
