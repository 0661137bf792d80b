// Whole files in and out, with EINTR handled once here.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>

namespace nb {

// The whole file, read until EOF (so /proc files, whose stat() size is 0, work too), or
// nullopt with errno set (missing, or gone meanwhile: a thread that exited).
inline std::optional<std::string> read_whole_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int err = errno;
            ::close(fd);
            errno = err;
            return std::nullopt;
        }
        if (n == 0) break;
        text.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return text;
}

// Writes all of `data` to `fd`; 0, or the errno of the write that failed.
inline int write_all(int fd, std::string_view data) {
    size_t off = 0;
    while (off < data.size()) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        off += static_cast<size_t>(n);
    }
    return 0;
}

}  // namespace nb
