// allocation_summary() and wireguard_slab() of resources.hpp: what the allocators, glibc's
// in the process and the kernel's slab for WireGuard, hold.
#include <malloc.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "agent/debug/resources.hpp"
#include "base/errno_text.hpp"
#include "base/file_io.hpp"
#include "base/malloc_stats.hpp"

namespace nb::debug {
namespace {

std::string mallinfo_text() {
    const MallocStats m = malloc_stats();
    std::string s = std::string("glibc malloc, all arenas (") + kMallocStatsCall + "):\n";
    auto line = [&s](const char* key, size_t value, const char* meaning) {
        char buf[160];
        std::snprintf(buf, sizeof buf, "  %-9s %14zu  %s\n", key, value, meaning);
        s += buf;
    };
    line("arena", m.arena, "bytes the arenas got from the system (brk and heaps)");
    line("uordblks", m.uordblks, "bytes in use, allocated in the arenas");
    line("fordblks", m.fordblks, "bytes free in the arenas, kept for reuse");
    line("keepcost", m.keepcost, "of those, free at the top of the main heap (trimmable)");
    line("hblkhd", m.hblkhd, "bytes in blocks mmapped on their own (large allocations)");
    line("hblks", m.hblks, "number of those mmapped blocks");
    line("ordblks", m.ordblks, "number of free chunks");
    line("smblks", m.smblks, "number of free fastbin chunks");
    line("fsmblks", m.fsmblks, "bytes in free fastbin chunks");
    return s;
}

std::string malloc_info_xml() {
    char* buf = nullptr;
    size_t size = 0;
    FILE* f = ::open_memstream(&buf, &size);
    if (!f) return "(malloc_info: " + errno_text(errno) + ")\n";
    const int rc = ::malloc_info(0, f);
    const int err = errno;
    std::fclose(f);
    std::string xml = buf ? std::string(buf, size) : std::string();
    std::free(buf);
    if (rc != 0) return "(malloc_info: " + errno_text(err) + ")\n";
    return xml;
}

// Cache names the WireGuard module creates (drivers/net/wireguard: wg_peer,
// allowedips_node, ratelimiter_entry) or that a fork might name after it.
bool is_wireguard_cache(std::string_view name) {
    return name.starts_with("wg_") || name.starts_with("wireguard") || name == "allowedips_node" ||
           name == "ratelimiter_entry";
}

}  // namespace

std::string allocation_summary() {
    return mallinfo_text() + "\nglibc malloc_info(), per arena and size class:\n" +
           malloc_info_xml();
}

std::string wireguard_slab_lines(std::string_view slabinfo) {
    std::string header, caches;
    for (int n = 0; !slabinfo.empty(); ++n) {
        const size_t eol = slabinfo.find('\n');
        const std::string_view line = slabinfo.substr(0, eol);
        slabinfo = eol == std::string_view::npos ? std::string_view() : slabinfo.substr(eol + 1);
        if (n < 2 && (line.starts_with("slabinfo") || line.starts_with("#"))) {
            header += std::string(line) + "\n";
        } else if (is_wireguard_cache(line.substr(0, line.find(' ')))) {
            caches += std::string(line) + "\n";
        }
    }
    return caches.empty() ? std::string() : header + caches;
}

std::string wireguard_slab() {
    const auto text = read_whole_file("/proc/slabinfo");
    if (!text) {
        return "/proc/slabinfo cannot be read (" + errno_text(errno) +
               "; it is readable by root only)\n";
    }
    std::string lines = wireguard_slab_lines(*text);
    if (lines.empty()) {
        return "/proc/slabinfo lists no WireGuard cache: the module is not loaded, or SLUB "
               "merged its caches into others of the same size (slab_nomerge keeps them)\n";
    }
    return lines;
}

}  // namespace nb::debug
