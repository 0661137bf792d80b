#include "base/net/netns.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace nb {

namespace {

std::optional<struct stat> self_netns() {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0) return std::nullopt;
    return st;
}

}  // namespace

std::string netns_id() {
    const auto self = self_netns();
    if (!self)
        throw std::runtime_error(std::string("cannot read /proc/self/ns/net: ") +
                                 std::strerror(errno));
    std::string id = "net-";
    id.append(std::to_string(self->st_ino));
    return id;
}

std::optional<std::string> netns_name(const std::string& netns_dir) {
    const auto self = self_netns();
    if (!self) return std::nullopt;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(netns_dir.c_str()), ::closedir);
    if (!dir) return std::nullopt;  // no named namespace at all
    while (const dirent* e = ::readdir(dir.get())) {
        const std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        struct stat st {};
        if (::stat((netns_dir + "/" + name).c_str(), &st) != 0) continue;
        if (st.st_dev == self->st_dev && st.st_ino == self->st_ino) return name;
    }
    return std::nullopt;
}

}  // namespace nb
