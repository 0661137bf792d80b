// The text of an errno value for messages, of either sign (libbpf returns -errno).
#pragma once

#include <cstring>
#include <string>

namespace nb {

inline std::string errno_text(int err) {
    err = err < 0 ? -err : err;
    // strerrordesc_np: strerror's text without its shared buffer (threads call this).
    const char* d = strerrordesc_np(err);
    return d ? d : "errno " + std::to_string(err);
}

}  // namespace nb
