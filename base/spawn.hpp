#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

namespace nb {

// Marks every descriptor of this process from `lowfd` up close-on-exec, by listing
// /proc/self/fd. Returns false if the list cannot be read.
inline bool mark_cloexec_listed(int lowfd) {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return false;
    int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        int fd = std::atoi(e->d_name);
        if (fd < lowfd || fd == own) continue;
        int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC)) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
    ::closedir(d);
    return true;
}

// The same in one call where the kernel has CLOSE_RANGE_CLOEXEC (5.11), else by listing.
inline bool mark_cloexec_from(int lowfd) {
#ifdef SYS_close_range
    constexpr unsigned kCloseRangeCloexec = 1U << 2;  // CLOSE_RANGE_CLOEXEC
    if (::syscall(SYS_close_range, static_cast<unsigned>(lowfd), ~0U, kCloseRangeCloexec) == 0)
        return true;
#endif
    return mark_cloexec_listed(lowfd);
}

// Makes the child of a posix_spawn see no descriptor from `lowfd` up. glibc 2.34 has a
// spawn action for it; before (Debian 11, Ubuntu 20.04) this process's descriptors are
// marked close-on-exec instead, which the agent wants anyway: it never execs itself, and
// a descriptor another thread opened without O_CLOEXEC must not leak.
inline void spawn_close_from(posix_spawn_file_actions_t* actions, int lowfd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(actions, lowfd);
#else
    (void)actions;
    mark_cloexec_from(lowfd);
#endif
}

}  // namespace nb
