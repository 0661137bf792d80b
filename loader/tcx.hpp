// tcx (kernel >= 6.6) through the raw bpf() system call: libbpf 1.1 has no API for a
// tcx link's position in the chain, and Debian 12's uapi headers (6.1) predate tcx. The
// few ABI values are defined here and nowhere else (tcx.cpp has the attr layouts).
#pragma once

#include <cstdint>
#include <vector>

namespace nb::tcx {

// enum bpf_attach_type in include/uapi/linux/bpf.h (fixed kernel ABI).
inline constexpr uint32_t kIngress = 46;  // BPF_TCX_INGRESS
inline constexpr uint32_t kEgress = 47;   // BPF_TCX_EGRESS

// Generic attach flags of the multi-program API (include/uapi/linux/bpf.h). BEFORE or
// AFTER with no relative program means before all (first) or after all (last).
inline constexpr uint32_t kFlagBefore = 1U << 3;  // BPF_F_BEFORE
inline constexpr uint32_t kFlagAfter = 1U << 4;   // BPF_F_AFTER

// BPF_LINK_CREATE for a tcx hook, relative to no program: kFlagBefore puts it first,
// kFlagAfter or no flag last. Returns the link fd, or -errno.
int link_create(int prog_fd, int ifindex, uint32_t attach_type, uint32_t flags);

// BPF_PROG_QUERY of a tcx hook: the attached programs' ids in the order they run.
struct Chain {
    int error = 0;  // 0, or the errno (EINVAL: this kernel has no tcx)
    std::vector<uint32_t> prog_ids;
    uint64_t revision = 0;  // changes with every attach and detach on the hook
};
Chain query(int ifindex, uint32_t attach_type);

}  // namespace nb::tcx
