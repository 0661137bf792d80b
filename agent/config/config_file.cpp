#include "agent/config/config_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "agent/config/wg_quick.hpp"
#include "base/printable.hpp"
#include "base/unique_fd.hpp"

namespace nb {

std::string read_config_file(const std::string& path, size_t max_bytes) {
    const std::string name = printable(path);
    auto fail = [&](const std::string& why) -> void { throw ConfigError(name + ": " + why); };
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) fail(std::string("cannot read: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) {
        const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                           : S_ISCHR(st.st_mode)  ? "a character device"
                           : S_ISBLK(st.st_mode)  ? "a block device"
                           : S_ISDIR(st.st_mode)  ? "a directory"
                           : S_ISSOCK(st.st_mode) ? "a socket"
                                                  : "not a regular file";
        fail(std::string("not a regular file (") + kind + ")");
    }
    const auto too_big = [&] {
        fail("larger than the limit of " + std::to_string(max_bytes) + " bytes");
    };
    if (static_cast<unsigned long long>(st.st_size) > max_bytes) too_big();
    std::string text;
    // One byte more than fstat says: the file may still be growing (someone writing
    // it), so read to the end, within the limit, rather than trust the size.
    text.resize(static_cast<size_t>(st.st_size) + 1);
    size_t got = 0;
    for (;;) {
        if (got == text.size())
            text.resize(std::min(max_bytes + 1, std::max<size_t>(4096, text.size() * 2)));
        const ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail(std::string("cannot read: ") + std::strerror(errno));
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
        if (got > max_bytes) too_big();
    }
    text.resize(got);
    return text;
}

}  // namespace nb
