#include "agent/activity/checksum.hpp"

#include <netinet/in.h>

#include <optional>

namespace nb {

namespace {

uint16_t load16(std::span<const uint8_t> p, size_t off) {
    return static_cast<uint16_t>(p[off] << 8 | p[off + 1]);
}

void store16(std::span<uint8_t> p, size_t off, uint16_t v) {
    p[off] = static_cast<uint8_t>(v >> 8);
    p[off + 1] = static_cast<uint8_t>(v);
}

uint32_t fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

// Where the transport header starts and which protocol it is, after the network
// header; nullopt for packets fix_transport_checksum leaves alone.
struct Transport {
    size_t offset;  // transport header start within the packet
    size_t length;  // transport header + payload, per the network header
    uint8_t proto;
    uint32_t pseudo_sum;  // pseudo-header sum without the length (added per protocol)
};

std::optional<Transport> locate_ipv4(std::span<const uint8_t> p) {
    if (p.size() < 20) return std::nullopt;
    size_t ihl = static_cast<size_t>(p[0] & 0x0f) * 4;
    size_t total = load16(p, 2);
    if (ihl < 20 || total < ihl || total > p.size()) return std::nullopt;
    if (load16(p, 6) & 0x3fff) return std::nullopt;  // MF set or non-zero offset
    uint8_t proto = p[9];
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return std::nullopt;
    uint32_t sum = checksum_add(p.subspan(12, 8));  // source and destination
    sum += proto;
    return Transport{ihl, total - ihl, proto, sum};
}

std::optional<Transport> locate_ipv6(std::span<const uint8_t> p) {
    if (p.size() < 40) return std::nullopt;
    size_t end = 40 + size_t{load16(p, 4)};  // payload length 0 (jumbogram) fails below
    if (end > p.size()) return std::nullopt;
    uint8_t next = p[6];
    size_t off = 40;
    for (;;) {
        if (next == IPPROTO_TCP || next == IPPROTO_UDP || next == IPPROTO_ICMPV6) break;
        if (next != IPPROTO_HOPOPTS && next != IPPROTO_DSTOPTS && next != IPPROTO_ROUTING) {
            return std::nullopt;  // fragment, ESP, no-next-header, unknown
        }
        if (off + 8 > end) return std::nullopt;
        // With segments left the pseudo-header would need the final destination.
        if (next == IPPROTO_ROUTING && p[off + 3] != 0) return std::nullopt;
        size_t len = (size_t{p[off + 1]} + 1) * 8;
        if (off + len > end) return std::nullopt;
        next = p[off];
        off += len;
    }
    uint32_t sum = checksum_add(p.subspan(8, 32));  // source and destination
    sum += next;
    return Transport{off, end - off, next, sum};
}

}  // namespace

uint32_t checksum_add(std::span<const uint8_t> data, uint32_t sum) {
    size_t i = 0;
    // 64-bit accumulator: no overflow for any packet size we handle.
    uint64_t acc = sum;
    for (; i + 1 < data.size(); i += 2) acc += load16(data, i);
    if (i < data.size()) acc += uint32_t{data[i]} << 8;
    while (acc >> 32) acc = (acc & 0xffffffff) + (acc >> 32);
    return fold(static_cast<uint32_t>(acc >> 16) + static_cast<uint32_t>(acc & 0xffff));
}

uint16_t internet_checksum(std::span<const uint8_t> data, uint32_t initial_sum) {
    return static_cast<uint16_t>(~fold(checksum_add(data, fold(initial_sum))) & 0xffff);
}

bool fix_transport_checksum(std::span<uint8_t> ip_packet) {
    if (ip_packet.empty()) return false;
    std::optional<Transport> t;
    switch (ip_packet[0] >> 4) {
        case 4:
            t = locate_ipv4(ip_packet);
            break;
        case 6:
            t = locate_ipv6(ip_packet);
            break;
        default:
            return false;
    }
    if (!t) return false;
    std::span<uint8_t> seg = ip_packet.subspan(t->offset, t->length);
    size_t check_off;
    size_t length = seg.size();
    switch (t->proto) {
        case IPPROTO_TCP:
            if (seg.size() < 20) return false;
            check_off = 16;
            break;
        case IPPROTO_UDP:
            // The UDP length field defines the datagram; it must fit the IP payload.
            if (seg.size() < 8) return false;
            length = load16(seg, 4);
            if (length < 8 || length > seg.size()) return false;
            check_off = 6;
            break;
        default:  // ICMPv6
            if (seg.size() < 4) return false;
            check_off = 2;
            break;
    }
    seg = seg.first(length);
    store16(seg, check_off, 0);
    // The pseudo-header length is 32-bit for IPv6; summed as two 16-bit words.
    uint32_t pseudo = t->pseudo_sum + static_cast<uint32_t>(length >> 16) +
                      static_cast<uint32_t>(length & 0xffff);
    uint16_t c = internet_checksum(seg, pseudo);
    if (c == 0 && t->proto == IPPROTO_UDP) c = 0xffff;  // 0 means "no checksum" in UDP
    store16(seg, check_off, c);
    return true;
}

}  // namespace nb
