// BPF objects as a debug bundle shows them: our programs and maps (bpf.txt), and every
// program and classifier on a device's tc hooks, ours and others' (tc.txt). Text for
// people; read through bpf() and rtnetlink, no bpftool or tc needed on the host.
#pragma once

#include <cstdint>
#include <string>

namespace nb {

class Datapath;

// What the kernel charges a BPF program or map fd ("memlock:" in /proc/self/fdinfo), 0 if
// it cannot be read.
uint64_t memlock_bytes(int fd);

// id, name, tag, type, load time, instruction counts; run counts and time when
// kernel.bpf_stats_enabled is on. "" when the id no longer exists.
std::string describe_program_id(uint32_t prog_id);
std::string describe_program_fd(int prog_fd);
// id, name, type, key and value sizes, capacity, memlock.
std::string describe_map_fd(int map_fd);

// Our two programs, the clock program, every map, the ring's refusals and the options
// the datapath was loaded with.
std::string datapath_report(const Datapath& dp);

// The device's tcx programs (6.6+) and clsact filters on ingress and egress, in the order
// the kernel runs them.
std::string tc_report(int ifindex);

}  // namespace nb
