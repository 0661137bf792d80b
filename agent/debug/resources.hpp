// The process's resource use and memory allocation, for resources.txt and
// allocations.txt of `nbagent debug bundle`. The agent uses glibc malloc (no tcmalloc),
// so there is no heap profile: glibc's own accounting stands in for it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nb::debug {

struct ResourceUse {
    // From /proc/self/status.
    uint64_t rss_bytes = 0;             // VmRSS: resident now
    uint64_t rss_peak_bytes = 0;        // VmHWM: the most ever resident
    uint64_t rss_anon_bytes = 0;        // RssAnon: heap and stacks
    uint64_t rss_file_bytes = 0;        // RssFile: mapped files (code, libraries)
    uint64_t vm_bytes = 0;              // VmSize: address space
    uint64_t swap_bytes = 0;            // VmSwap
    uint64_t threads = 0;               // Threads
    uint64_t voluntary_switches = 0;    // voluntary_ctxt_switches: waits
    uint64_t involuntary_switches = 0;  // nonvoluntary_ctxt_switches: preempted
    // From /proc/self/fd, getrlimit and getrusage.
    uint64_t fds = 0;
    uint64_t fd_limit = 0;  // RLIMIT_NOFILE, soft
    uint64_t user_cpu_us = 0;
    uint64_t system_cpu_us = 0;
};

// The /proc/self/status fields of ResourceUse from that file's text (others stay 0).
ResourceUse parse_proc_status(std::string_view status);
// This process now. A file that cannot be read leaves its fields 0.
ResourceUse read_resource_use();
// Text for resources.txt, one field a line.
std::string render_resources(const ResourceUse& use);

// glibc malloc's accounting for all arenas (mallinfo2, each field with its meaning),
// then malloc_info()'s XML, per arena and per size class. Under ASan the allocator is
// ASan's and these describe only what glibc still allocates.
std::string allocation_summary();

// The lines of /proc/slabinfo (its two header lines, then the caches of WireGuard: wg_*,
// wireguard*, allowedips_node, ratelimiter_entry), or a sentence saying why there are none:
// the file is root's, and SLUB merges small caches into others of the same size.
std::string wireguard_slab();
// The same from the text of a slabinfo file, exposed for tests.
std::string wireguard_slab_lines(std::string_view slabinfo);

}  // namespace nb::debug
