// The process's capabilities: what `run` checks instead of uid 0, so a hardened unit can
// run it as its own user with AmbientCapabilities=.
#pragma once

#include <string>
#include <vector>

namespace nb {

// Those of `names` ("CAP_NET_ADMIN", ...) not in the effective set, in their order.
std::vector<std::string> missing_capabilities(const std::vector<std::string>& names);

// CAP_BPF and CAP_PERFMON came in 5.8; before them bpf() wants CAP_SYS_ADMIN.
bool kernel_has_cap_bpf();

}  // namespace nb
