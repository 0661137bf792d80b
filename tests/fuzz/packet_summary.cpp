// Fuzzes the packet summary (summarize_packet, base/net/packet_summary.*) that
// traces held packets: IPv4/IPv6 headers, IPv6 extension headers, ICMP, TCP and UDP
// ports. It never reads past the packet (ASan: libFuzzer's buffer is exactly the
// input), says "no summary" exactly for what is not an IPv4/IPv6 packet with a complete
// network header, and what it says matches the bytes.
#include <netinet/in.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/net/packet_summary.hpp"
#include "tests/fuzz/fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    auto s = summarize_packet(std::span<const uint8_t>(data, size));
    const int version = size > 0 ? data[0] >> 4 : 0;
    const std::size_t ihl = size > 0 ? std::size_t{data[0] & 0x0fu} * 4 : 0;
    const bool whole_header =
        (version == 4 && size >= 20 && ihl >= 20 && ihl <= size) || (version == 6 && size >= 40);
    NB_FUZZ_CHECK(s.has_value() == whole_header);
    if (!s) return 0;
    const std::size_t src_off = version == 4 ? 12 : 8, addr_len = version == 4 ? 4 : 16;
    NB_FUZZ_CHECK(s->family == (version == 4 ? AF_INET : AF_INET6));
    NB_FUZZ_CHECK(fuzz::valid_address(s->src) && fuzz::valid_address(s->dst));
    NB_FUZZ_CHECK(std::equal(data + src_off, data + src_off + addr_len, s->src.bytes.begin()));
    NB_FUZZ_CHECK(
        std::equal(data + src_off + addr_len, data + src_off + 2 * addr_len, s->dst.bytes.begin()));
    if (version == 4) NB_FUZZ_CHECK(s->proto == data[9]);
    if (s->proto != IPPROTO_TCP && s->proto != IPPROTO_UDP)
        NB_FUZZ_CHECK(s->sport == 0 && s->dport == 0);
    std::string line = s->str();
    NB_FUZZ_CHECK_MSG(line.find(" -> ") != std::string::npos, line);
    return 0;
}
