// Giving freed memory back to the system. glibc keeps what a big transient allocation
// freed (a million peers' config, a WireGuard dump, a status reply) as long as any
// long-lived block sits above it, so RSS would stay at the peak: an idle agent would
// look as big as its busiest moment.
#pragma once

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <ctime>

namespace nb {

// Once at start: buffers of 1 MiB and more are always their own mapping, returned on
// free (glibc would otherwise raise that threshold to 32 MiB after the first big free).
inline void tune_allocator() {
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

// After work whose memory grows with the peer count.
inline void give_back_memory() {
    malloc_trim(0);
}

// The same for periodic work (WireGuard dumps of every peer): at most once a second,
// as the trim walks the whole heap.
inline void give_back_memory_now_and_then() {
    static int64_t last_s = 0;
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec == last_s) return;
    last_s = ts.tv_sec;
    malloc_trim(0);
}

// A big buffer about to be filled (a status reply of tens of MB): huge pages where the
// system allows them, so filling it takes a few faults instead of one per 4 KiB page.
// Advice only; the whole pages inside [p, p + n) are what it covers.
inline void advise_huge_pages(const void* p, size_t n) {
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const auto begin = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1);
    const auto end = (reinterpret_cast<uintptr_t>(p) + n) & ~(page - 1);
    if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
}

}  // namespace nb
