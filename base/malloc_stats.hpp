// glibc malloc's accounting for all arenas, on every glibc the project builds on:
// mallinfo2 came in glibc 2.33; before it (Debian 11) only mallinfo, whose int fields
// wrap past 2 GiB.
#pragma once

#include <malloc.h>

#include <cstddef>

namespace nb {

struct MallocStats {
    size_t arena, ordblks, smblks, hblks, hblkhd, fsmblks, uordblks, fordblks, keepcost;
};

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
inline constexpr const char* kMallocStatsCall = "mallinfo2";
inline MallocStats malloc_stats() {
    const struct mallinfo2 m = ::mallinfo2();
    return {m.arena,   m.ordblks,  m.smblks,   m.hblks,   m.hblkhd,
            m.fsmblks, m.uordblks, m.fordblks, m.keepcost};
}
#else
inline constexpr const char* kMallocStatsCall = "mallinfo (int fields: wrap past 2 GiB)";
inline MallocStats malloc_stats() {
    const struct mallinfo m = ::mallinfo();
    auto z = [](int v) { return static_cast<size_t>(static_cast<unsigned>(v)); };
    return {z(m.arena),   z(m.ordblks),  z(m.smblks),   z(m.hblks),   z(m.hblkhd),
            z(m.fsmblks), z(m.uordblks), z(m.fordblks), z(m.keepcost)};
}
#endif

}  // namespace nb
