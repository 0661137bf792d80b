// The event loop's fds, each with the callback its events go to: an fd is registered
// where it is made, and the loop only looks its callback up.
#pragma once

#include <cstdint>
#include <functional>
#include <unordered_map>

#include "base/unique_fd.hpp"

namespace nb::engine {

class FdTable {
  public:
    using Callback = std::function<void(uint32_t events)>;
    // For fds someone else adds to the epoll set (the control server's clients).
    using Fallback = std::function<void(int fd, uint32_t events)>;

    // Creates the epoll set; throws std::system_error.
    FdTable();

    int epoll_fd() const { return ep_.get(); }
    // Watches `fd` for input; its events go to `cb`. Throws std::system_error.
    void watch(int fd, Callback cb);
    // Before `fd` closes: a later fd with the same number must not reach its callback.
    void forget(int fd);
    void set_fallback(Fallback cb) { fallback_ = std::move(cb); }
    // Runs the callback of `fd`, or the fallback for an fd not watched here.
    void dispatch(int fd, uint32_t events) const;

  private:
    UniqueFd ep_;
    std::unordered_map<int, Callback> callbacks_;
    Fallback fallback_;
};

}  // namespace nb::engine
