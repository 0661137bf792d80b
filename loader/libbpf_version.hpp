// The libbpf the agent runs with (the shared library loaded now, not the headers it was
// built against), for `nbagent version` and debug bundles.
#pragma once

#include <string>

namespace nb {

// "1.1" on Debian 12.
std::string libbpf_version();

}  // namespace nb
