#include "loader/tcx.hpp"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace nb::tcx {

namespace {

// The parts of union bpf_attr these commands use, laid out as in the kernel's
// include/uapi/linux/bpf.h since 6.6 (checked against a 6.18 kernel's BTF); the kernel
// reads only the bytes it knows and needs the rest zero, which a shorter attr gives.

// link_create, with its `tcx` member.
struct LinkCreateAttr {
    uint32_t prog_fd;
    uint32_t target_ifindex;
    uint32_t attach_type;
    uint32_t flags;
    uint32_t relative_fd;  // tcx.relative_fd / tcx.relative_id
    uint32_t pad;
    uint64_t expected_revision;  // 0: no check
};
static_assert(offsetof(LinkCreateAttr, flags) == 12);
static_assert(offsetof(LinkCreateAttr, relative_fd) == 16);
static_assert(offsetof(LinkCreateAttr, expected_revision) == 24);

// query (BPF_PROG_QUERY), with the fields tcx added after prog_attach_flags.
struct ProgQueryAttr {
    uint32_t target_ifindex;
    uint32_t attach_type;
    uint32_t query_flags;
    uint32_t attach_flags;
    uint64_t prog_ids;  // user pointer to uint32_t[count]
    uint32_t count;     // in: capacity; out: programs attached
    uint32_t pad;
    uint64_t prog_attach_flags;
    uint64_t link_ids;
    uint64_t link_attach_flags;
    uint64_t revision;
};
static_assert(offsetof(ProgQueryAttr, prog_ids) == 16);
static_assert(offsetof(ProgQueryAttr, count) == 24);
static_assert(offsetof(ProgQueryAttr, revision) == 56);

long sys_bpf(int cmd, void* attr, size_t size) {
    return syscall(__NR_bpf, cmd, attr, size);
}

// A tcx hook holds at most 64 programs (BPF_MPROG_MAX).
constexpr uint32_t kMaxPrograms = 64;

}  // namespace

int link_create(int prog_fd, int ifindex, uint32_t attach_type, uint32_t flags) {
    LinkCreateAttr attr{};
    attr.prog_fd = static_cast<uint32_t>(prog_fd);
    attr.target_ifindex = static_cast<uint32_t>(ifindex);
    attr.attach_type = attach_type;
    attr.flags = flags;
    long fd = sys_bpf(BPF_LINK_CREATE, &attr, sizeof attr);
    return fd < 0 ? -errno : static_cast<int>(fd);
}

Chain query(int ifindex, uint32_t attach_type) {
    Chain c;
    c.prog_ids.resize(kMaxPrograms);
    ProgQueryAttr attr{};
    attr.target_ifindex = static_cast<uint32_t>(ifindex);
    attr.attach_type = attach_type;
    attr.prog_ids = reinterpret_cast<uintptr_t>(c.prog_ids.data());
    attr.count = kMaxPrograms;
    if (sys_bpf(BPF_PROG_QUERY, &attr, sizeof attr) < 0) {
        c.error = errno;
        c.prog_ids.clear();
        return c;
    }
    c.prog_ids.resize(attr.count < kMaxPrograms ? attr.count : kMaxPrograms);
    c.revision = attr.revision;
    return c;
}

}  // namespace nb::tcx
