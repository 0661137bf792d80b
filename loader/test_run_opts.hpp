#pragma once
// Options for BPF_PROG_TEST_RUN on one frame (the clock program, BPF unit tests, the
// program-cost bench).

#include <bpf/bpf.h>

#include <cstdint>
#include <span>

namespace nb {

// Set field by field: libbpf's LIBBPF_OPTS is a C macro (a compound literal inside a GNU
// statement expression) that clang rejects in pedantic C++.
inline bpf_test_run_opts test_run_opts(std::span<const uint8_t> frame, int repeat = 1) {
    bpf_test_run_opts o{};
    o.sz = sizeof(o);
    o.data_in = frame.data();
    o.data_size_in = static_cast<uint32_t>(frame.size());
    o.repeat = repeat;
    return o;
}

}  // namespace nb
