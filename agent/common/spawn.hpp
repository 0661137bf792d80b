#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

namespace nb {

// Makes the child of a posix_spawn see no descriptor from `lowfd` up. glibc 2.34 has a
// spawn action for it; before (Debian 11, Ubuntu 20.04) every such descriptor of this
// process is marked close-on-exec instead, which the agent wants anyway: it never execs
// itself, and a descriptor another thread opened without O_CLOEXEC must not leak.
inline void spawn_close_from(posix_spawn_file_actions_t* actions, int lowfd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
#else
    (void)actions;
#ifdef SYS_close_range
    constexpr unsigned kCloseRangeCloexec = 1U << 2;  // CLOSE_RANGE_CLOEXEC, kernel 5.11
    if (::syscall(SYS_close_range, static_cast<unsigned>(lowfd), ~0U, kCloseRangeCloexec) == 0)
        return;
#endif
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return;
    int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        int fd = std::atoi(e->d_name);
        if (e->d_name[0] == '.' || fd < lowfd || fd == own) continue;
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    ::closedir(d);
#endif
}

}  // namespace nb
