#include "agent/engine/fd_table.hpp"

#include <sys/epoll.h>

#include <cerrno>
#include <system_error>

namespace nb::engine {

FdTable::FdTable() : ep_(epoll_create1(EPOLL_CLOEXEC)) {
    if (ep_.get() < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
}

void FdTable::watch(int fd, Callback cb) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
        throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    callbacks_[fd] = std::move(cb);
}

void FdTable::forget(int fd) {
    if (callbacks_.erase(fd) == 0) return;
    // Closing the fd would remove it from the set too, unless a copy of it lives on.
    epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void FdTable::dispatch(int fd, uint32_t events) const {
    auto it = callbacks_.find(fd);
    if (it != callbacks_.end()) {
        // A copy: the callback may watch or forget fds, which moves the table's entries.
        Callback cb = it->second;
        cb(events);
    } else if (fallback_) {
        fallback_(fd, events);
    }
}

}  // namespace nb::engine
