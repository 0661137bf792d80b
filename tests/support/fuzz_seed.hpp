// Seed inputs for the fuzz targets (tests/fuzz), taken from the unit tests: a test hands
// what it feeds a decoder to fuzz_seed(TARGET, bytes). With NB_FUZZ_SEED_DIR set
// (`scripts/fuzz.sh seeds`) each input becomes a file in DIR/TARGET/, which the script
// then merges into tests/fuzz/corpus/TARGET; without it fuzz_seed does nothing.
// Also the framing of several datagrams in one fuzz input, shared by the tests that write
// such seeds and the targets that read them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <span>
#include <string_view>
#include <vector>

namespace nb::test {

// Larger inputs (the 100k-peer tests) are slow seeds that cover nothing small ones miss.
inline constexpr std::size_t kMaxFuzzSeed = 64 * 1024;

inline void fuzz_seed(const char* target, std::span<const uint8_t> bytes) {
    const char* dir = std::getenv("NB_FUZZ_SEED_DIR");
    if (!dir || bytes.size() > kMaxFuzzSeed) return;
    // Named by content (FNV-1a): an input several tests use is one file.
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
    char name[17];
    std::snprintf(name, sizeof name, "%016llx", static_cast<unsigned long long>(h));
    std::filesystem::path where = std::filesystem::path(dir) / target;
    std::filesystem::create_directories(where);
    std::ofstream(where / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
}

inline void fuzz_seed(const char* target, std::string_view text) {
    fuzz_seed(target,
              std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

// Several datagrams as one input: each is a 2-byte little-endian length and then that
// many bytes. A length beyond the input's end takes what is left, so every input splits.
inline std::vector<uint8_t> frame_datagrams(const std::vector<std::vector<uint8_t>>& datagrams) {
    std::vector<uint8_t> out;
    for (const auto& d : datagrams) {
        std::size_t n = d.size() > 0xffff ? 0xffff : d.size();
        out.push_back(static_cast<uint8_t>(n & 0xff));
        out.push_back(static_cast<uint8_t>(n >> 8));
        out.insert(out.end(), d.begin(), d.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return out;
}

inline std::vector<std::span<const uint8_t>> split_datagrams(std::span<const uint8_t> input) {
    std::vector<std::span<const uint8_t>> out;
    while (input.size() >= 2) {
        std::size_t n = std::size_t{input[0]} | std::size_t{input[1]} << 8;
        input = input.subspan(2);
        if (n > input.size()) n = input.size();
        out.push_back(input.first(n));
        input = input.subspan(n);
    }
    return out;
}

}  // namespace nb::test
