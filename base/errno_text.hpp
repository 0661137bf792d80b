// The text of an errno value for messages, of either sign (libbpf returns -errno).
#pragma once

#include <cstring>
#include <string>

namespace nb {

inline std::string errno_text(int err) {
    err = err < 0 ? -err : err;
    // GNU strerror_r: strerror's text without its shared buffer (threads call this), in
    // every glibc (strerrordesc_np is 2.32, newer than Debian 11's).
    char buf[128];
    return ::strerror_r(err, buf, sizeof buf);
}

}  // namespace nb
