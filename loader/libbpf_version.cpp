#include "loader/libbpf_version.hpp"

#include <bpf/libbpf.h>

namespace nb {

std::string libbpf_version() {
    // The numbers rather than libbpf_version_string(): it says "v1.1", and the rest of
    // the version report has no "v".
    return std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version());
}

}  // namespace nb
