// What the running kernel lets us do with BPF, found by trying (never from version
// strings). Each probe says yes or no and, for no, why.
#pragma once

#include <string>

namespace nb {

struct Probe {
    bool ok = false;
    std::string detail;  // why not, or what was found
};

struct BpfFeatures {
    Probe bpf;       // bpf() usable for tc programs (root, not blocked by seccomp)
    Probe ringbuf;   // BPF_MAP_TYPE_RINGBUF
    Probe lpm_trie;  // BPF_MAP_TYPE_LPM_TRIE
    Probe tcx;       // tcx links (kernel >= 6.6), else clsact is used
    Probe btf;       // kernel BTF at /sys/kernel/btf/vmlinux

    // Everything the BPF trigger engine needs.
    bool usable() const { return bpf.ok && ringbuf.ok && lpm_trie.ok; }
    std::string why_not() const;
};

BpfFeatures probe_bpf_features();

}  // namespace nb
