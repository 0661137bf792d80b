#include "agent/activity/gso_segment.hpp"

#include <algorithm>

#include "agent/activity/checksum.hpp"

namespace nb {

namespace {

constexpr uint8_t kTcp = 6, kUdp = 17;
constexpr uint8_t kFin = 0x01, kPsh = 0x08, kCwr = 0x80;

uint16_t get16(std::span<const uint8_t> b, size_t off) {
    return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}
uint32_t get32(std::span<const uint8_t> b, size_t off) {
    return static_cast<uint32_t>(get16(b, off)) << 16 | get16(b, off + 2);
}
void put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
    b[off] = static_cast<uint8_t>(v >> 8);
    b[off + 1] = static_cast<uint8_t>(v);
}
void put32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
    put16(b, off, static_cast<uint16_t>(v >> 16));
    put16(b, off + 2, static_cast<uint16_t>(v));
}

}  // namespace

std::optional<std::vector<std::vector<uint8_t>>> segment_gso(std::span<const uint8_t> packet,
                                                             uint32_t gso_size) {
    if (gso_size == 0 || packet.empty()) return std::nullopt;
    const unsigned version = packet[0] >> 4;
    size_t l3 = 0;
    uint8_t proto = 0;
    if (version == 4) {
        if (packet.size() < 20) return std::nullopt;
        l3 = static_cast<size_t>(packet[0] & 0x0f) * 4;
        if (l3 < 20 || packet.size() < l3) return std::nullopt;
        // 0: a super-packet too big for the field (BIG TCP); the bytes are the length.
        const uint16_t total = get16(packet, 2);
        if (total != 0 && total != packet.size()) return std::nullopt;
        if (get16(packet, 6) & 0x3fff) return std::nullopt;  // MF or an offset: a fragment
        proto = packet[9];
    } else if (version == 6) {
        l3 = 40;
        if (packet.size() < l3) return std::nullopt;
        const uint16_t payload_len = get16(packet, 4);
        if (payload_len != 0 && payload_len != packet.size() - l3) return std::nullopt;
        proto = packet[6];
    } else {
        return std::nullopt;
    }
    size_t l4 = 0;
    if (proto == kTcp) {
        if (packet.size() < l3 + 20) return std::nullopt;
        l4 = static_cast<size_t>(packet[l3 + 12] >> 4) * 4;
        if (l4 < 20 || packet.size() < l3 + l4) return std::nullopt;
    } else if (proto == kUdp) {
        l4 = 8;
        if (packet.size() < l3 + l4) return std::nullopt;
    } else {
        return std::nullopt;
    }
    const size_t headers = l3 + l4;
    const size_t payload = packet.size() - headers;
    std::vector<std::vector<uint8_t>> out;
    if (payload <= gso_size) {
        out.emplace_back(packet.begin(), packet.end());
        return out;
    }
    const size_t count = (payload + gso_size - 1) / gso_size;
    if (count > kMaxGsoSegments) return std::nullopt;
    out.reserve(count);
    const uint16_t ip_id = version == 4 ? get16(packet, 4) : 0;
    const uint32_t seq = proto == kTcp ? get32(packet, l3 + 4) : 0;
    for (size_t i = 0; i < count; ++i) {
        const size_t from = headers + i * gso_size;
        const size_t len = std::min<size_t>(gso_size, packet.size() - from);
        std::vector<uint8_t>& seg = out.emplace_back(packet.begin(), packet.begin() + headers);
        seg.insert(seg.end(), packet.begin() + from, packet.begin() + from + len);
        if (version == 4) {
            put16(seg, 2, static_cast<uint16_t>(headers + len));
            put16(seg, 4, static_cast<uint16_t>(ip_id + i));
            put16(seg, 10, 0);
            put16(seg, 10, internet_checksum({seg.data(), l3}));
        } else {
            put16(seg, 4, static_cast<uint16_t>(l4 + len));
        }
        if (proto == kTcp) {
            put32(seg, l3 + 4, static_cast<uint32_t>(seq + i * gso_size));
            uint8_t& flags = seg[l3 + 13];
            if (i > 0) flags &= static_cast<uint8_t>(~kCwr);
            if (i + 1 < count) flags &= static_cast<uint8_t>(~(kFin | kPsh));
        } else {
            put16(seg, l3 + 4, static_cast<uint16_t>(l4 + len));
        }
    }
    return out;
}

}  // namespace nb
