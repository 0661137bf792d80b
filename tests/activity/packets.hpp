// Hand-built IPv4/IPv6 packets for the activity tests, with transport checksums from a
// deliberately naive reference: one flat buffer of pseudo-header + segment, summed.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nb::test {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v & 0xff);
}

inline uint16_t get16(const Bytes& b, size_t off) {
    return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

inline uint16_t reference_checksum(const Bytes& data) {
    uint64_t sum = 0;
    for (size_t i = 0; i < data.size(); i += 2) {
        uint16_t hi = data[i];
        uint16_t lo = i + 1 < data.size() ? data[i + 1] : 0;
        sum += static_cast<uint16_t>(hi << 8 | lo);
    }
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    return static_cast<uint16_t>(~sum & 0xffff);
}

inline Bytes ipv4_src() {
    return {10, 1, 2, 3};
}
inline Bytes ipv4_dst() {
    return {10, 200, 0, 9};
}
inline Bytes ipv6_src() {
    return {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
}
inline Bytes ipv6_dst() {
    return {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34, 0, 2};
}

// Transport segment with its checksum field zero: TCP (20-byte header), UDP or ICMPv6
// echo request, followed by `payload`.
inline Bytes segment(uint8_t proto, const std::string& payload, uint16_t sport = 40000,
                     uint16_t dport = 51820) {
    Bytes s;
    if (proto == IPPROTO_TCP) {
        s.assign(20, 0);
        put16(s, 0, sport);
        put16(s, 2, dport);
        put16(s, 4, 0x1234);  // sequence
        s[12] = 5 << 4;       // data offset
        s[13] = 0x18;         // PSH|ACK
        put16(s, 14, 64240);  // window
    } else if (proto == IPPROTO_UDP) {
        s.assign(8, 0);
        put16(s, 0, sport);
        put16(s, 2, dport);
        put16(s, 4, static_cast<uint16_t>(8 + payload.size()));
    } else {
        s = {128, 0, 0, 0, 0x12, 0x34, 0, 1};  // echo request, id, seq
    }
    s.insert(s.end(), payload.begin(), payload.end());
    return s;
}

inline size_t checksum_offset(uint8_t proto) {
    return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;
}

// Writes the correct checksum into `seg` using the reference over a flat pseudo-header.
inline void checksum_segment(Bytes& seg, uint8_t proto, const Bytes& src, const Bytes& dst) {
    Bytes flat = src;
    flat.insert(flat.end(), dst.begin(), dst.end());
    if (src.size() == 4) {
        flat.push_back(0);
        flat.push_back(proto);
        flat.push_back(static_cast<uint8_t>(seg.size() >> 8));
        flat.push_back(static_cast<uint8_t>(seg.size()));
    } else {
        uint32_t len = static_cast<uint32_t>(seg.size());
        for (int shift = 24; shift >= 0; shift -= 8)
            flat.push_back(static_cast<uint8_t>(len >> shift));
        flat.insert(flat.end(), {0, 0, 0, proto});
    }
    put16(seg, checksum_offset(proto), 0);
    flat.insert(flat.end(), seg.begin(), seg.end());
    uint16_t c = reference_checksum(flat);
    if (c == 0 && proto == IPPROTO_UDP) c = 0xffff;
    put16(seg, checksum_offset(proto), c);
}

// IPv4 header (valid header checksum) + segment; `ext` unused.
inline Bytes ipv4_packet(uint8_t proto, const Bytes& seg, uint16_t frag = 0x4000) {
    Bytes p(20, 0);
    p[0] = 0x45;
    put16(p, 2, static_cast<uint16_t>(20 + seg.size()));
    put16(p, 4, 0xbeef);
    put16(p, 6, frag);
    p[8] = 64;
    p[9] = proto;
    Bytes src = ipv4_src(), dst = ipv4_dst();
    std::copy(src.begin(), src.end(), p.begin() + 12);
    std::copy(dst.begin(), dst.end(), p.begin() + 16);
    put16(p, 10, reference_checksum(p));
    p.insert(p.end(), seg.begin(), seg.end());
    return p;
}

// IPv6 header + optional extension headers (`ext`, already chained to `proto` by the
// caller through `first_next`) + segment.
inline Bytes ipv6_packet(uint8_t first_next, const Bytes& ext, const Bytes& seg) {
    Bytes p(40, 0);
    p[0] = 0x60;
    put16(p, 4, static_cast<uint16_t>(ext.size() + seg.size()));
    p[6] = first_next;
    p[7] = 64;
    Bytes src = ipv6_src(), dst = ipv6_dst();
    std::copy(src.begin(), src.end(), p.begin() + 8);
    std::copy(dst.begin(), dst.end(), p.begin() + 24);
    p.insert(p.end(), ext.begin(), ext.end());
    p.insert(p.end(), seg.begin(), seg.end());
    return p;
}

}  // namespace nb::test
