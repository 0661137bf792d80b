// Fuzzes the debug bundle's anonymizer (agent/debug/anonymizer.*) on any text: it never
// crashes, one seed gives one output, one object gives the same output again (what a
// bundle relies on across its files), and what it writes holds no IPv4 address but its
// pseudonyms and the ones it keeps. That last check finds addresses its own way (a
// dotted quad standing apart from letters and digits), not through the anonymizer's
// scanner, so a token the scanner misses shows up here.
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/debug/anonymizer.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

bool alnum(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The output ranges (agent/debug/pseudonyms.hpp) and the kept addresses, written out.
bool allowed(uint32_t v) {
    const uint32_t host = v & 0xff;
    const bool pseudonym_host = host != 0 && host != 255;
    if (pseudonym_host && ((v & 0xffffff00) == 0xc6336400 ||  // 198.51.100.0/24
                           (v & 0xffffff00) == 0xcb007100 ||  // 203.0.113.0/24
                           (v & 0xfffe0000) == 0xc6120000 ||  // 198.18.0.0/15
                           (v & 0xf8000000) == 0xf0000000))   // 240.0.0.0/5
        return true;
    if ((v >> 24) == 0 || (v >> 24) == 127) return true;
    const uint32_t inv = ~v;
    return (v >> 24) == 255 && (inv & (inv + 1)) == 0;  // a netmask
}

// Every dotted quad in `out` that does not continue a word or a dotted run.
void check_ipv4(std::string_view out) {
    for (size_t i = 0; i < out.size(); ++i) {
        if (out[i] < '0' || out[i] > '9') continue;
        if (i > 0 && (alnum(out[i - 1]) || out[i - 1] == '.')) continue;
        size_t j = i;
        while (j < out.size() && ((out[j] >= '0' && out[j] <= '9') || out[j] == '.')) ++j;
        size_t len = j - i;
        while (out[i + len - 1] == '.') --len;
        const bool glued = len == j - i && j < out.size() && (alnum(out[j]) || out[j] == '_');
        if (!glued && len <= 15) {
            const std::string quad(out.substr(i, len));
            uint32_t be = 0;
            if (inet_pton(AF_INET, quad.c_str(), &be) == 1)
                NB_FUZZ_CHECK_MSG(allowed(ntohl(be)), quad + " in: " + std::string(out));
        }
        i = j;
    }
}

nb::Anonymizer bundle(uint64_t seed) {
    nb::Anonymizer an(seed);
    an.add_name("laptop.example.com", "host");
    an.add_name("/usr/bin/connect --to", "command");
    an.add_name("a\"b", "quote");
    return an;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    nb::Anonymizer an = bundle(42);
    const std::string out = an.text(in);
    check_ipv4(out);
    NB_FUZZ_CHECK(an.text(in) == out);
    NB_FUZZ_CHECK(bundle(42).text(in) == out);
    // Addresses alone (names and keys left as they are) leave none either.
    check_ipv4(an.address(in));
    return 0;
}
