// A byte buffer in its own anonymous mapping, for replies of tens of MB: growing it
// moves page tables (mremap) instead of copying, nothing is zero-filled twice, and the
// kernel may back a big one with huge pages (a 25 MB status reply takes a few
// hundred faults, not 16,000).
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <new>

#include "base/memory.hpp"

namespace nb {

class MappedBuffer {
  public:
    MappedBuffer() = default;
    ~MappedBuffer() {
        if (data_) munmap(data_, cap_);
    }
    MappedBuffer(const MappedBuffer&) = delete;
    MappedBuffer& operator=(const MappedBuffer&) = delete;

    char* data() { return data_; }
    const char* data() const { return data_; }
    size_t capacity() const { return cap_; }

    // At least `n` bytes; the contents so far are kept. Throws std::bad_alloc.
    void reserve(size_t n) {
        if (n <= cap_) return;
        size_t cap = kHuge;
        while (cap < n) cap *= 2;
        void* p =
            data_ ? mremap(data_, cap_, cap, MREMAP_MAYMOVE)
                  : mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        // Huge pages only for a big reply: where a huge page has to be compacted first,
        // a short reply would wait for it. Advice only; without THP it changes nothing.
        if (cap >= kBig) advise_huge_pages(p, cap);
        data_ = static_cast<char*>(p);
        cap_ = cap;
    }

  private:
    static constexpr size_t kHuge = 2 * 1024 * 1024;  // sizes stay multiples of a huge page
    static constexpr size_t kBig = 8 * kHuge;
    char* data_ = nullptr;
    size_t cap_ = 0;
};

}  // namespace nb
