#include "loader/probes.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/errno_text.hpp"
#include "loader/tcx.hpp"

namespace nb {

namespace {

// errno_text with what the error usually means for bpf().
std::string bpf_errno_text(int err) {
    err = err < 0 ? -err : err;
    std::string s = errno_text(err);
    if (err == ENOSYS) s += " (no bpf() system call, or blocked by seccomp)";
    if (err == EPERM) s += " (needs root: CAP_BPF and CAP_NET_ADMIN)";
    return s;
}

// libbpf's map probes return 1 (supported), 0 (not supported) or a negative errno.
Probe from_libbpf(int rc, const char* what) {
    if (rc == 1) return {true, "yes"};
    if (rc == 0) return {false, std::string(what) + " not supported by this kernel"};
    return {false, bpf_errno_text(rc)};
}

}  // namespace

std::string BpfFeatures::why_not() const {
    if (!bpf.ok) return "bpf(): " + bpf.detail;
    if (!ringbuf.ok) return "ring buffer: " + ringbuf.detail;
    if (!lpm_trie.ok) return "LPM trie: " + lpm_trie.detail;
    return "";
}

BpfFeatures probe_bpf_features() {
    BpfFeatures f;
    // libbpf's probes answer "not supported" for any failure; loading the smallest tc
    // program ourselves tells EPERM (no privilege) and ENOSYS (no bpf(), or seccomp) apart.
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},  // r0 = 0
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},                   // return r0
    };
    int prog_fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "nb_probe", "GPL", insns, 2, nullptr);
    if (prog_fd < 0) {
        f.bpf = {false, bpf_errno_text(errno)};
    } else {
        close(prog_fd);
        f.bpf = {true, "yes"};
    }
    if (!f.bpf.ok) {
        f.ringbuf = f.lpm_trie = f.tcx = {false, "bpf() not usable"};
    } else {
        f.ringbuf =
            from_libbpf(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, nullptr), "ring buffer");
        f.lpm_trie =
            from_libbpf(libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, nullptr), "LPM trie");
        // Querying tcx on loopback attaches nothing; kernels without tcx reject the
        // attach type with EINVAL.
        const int err = tcx::query(1, tcx::kIngress).error;
        if (err == 0)
            f.tcx = {true, "yes"};
        else if (err == EINVAL)
            f.tcx = {false, "no (kernel < 6.6): clsact is used"};
        else
            f.tcx = {false, bpf_errno_text(err)};
    }
    f.btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0
                ? Probe{true, "yes"}
                : Probe{false, "no /sys/kernel/btf/vmlinux (not needed: programs use no CO-RE)"};
    return f;
}

}  // namespace nb
