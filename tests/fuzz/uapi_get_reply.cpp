// Fuzzes the wireguard-go UAPI reply parser (parse_uapi_get_reply,
// agent/wg/uapi_control.*): the daemon's "get=1" reply, whatever its bytes, parses or
// throws WgError "UAPI ..."; a parsed device keeps the parser's promises and survives a
// round trip: written back as a reply, it parses to the same device.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/wg/uapi_control.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace nb {
namespace {

void check_promises(const WgDevice& d) {
    NB_FUZZ_CHECK(!d.private_key || !d.private_key->is_zero());  // all zero means none
    for (const WgPeer& p : d.peers) {
        NB_FUZZ_CHECK(!p.preshared_key || !p.preshared_key->is_zero());
        NB_FUZZ_CHECK(!p.endpoint || p.endpoint->family() == AF_INET ||
                      p.endpoint->family() == AF_INET6);
        for (const IpPrefix& ip : p.allowed_ips) NB_FUZZ_CHECK(fuzz::normalized(ip));
    }
}

// The device as wireguard-go would send it.
std::string to_reply(const WgDevice& d) {
    std::string r;
    if (d.private_key) r += "private_key=" + d.private_key->hex() + "\n";
    r += "listen_port=" + std::to_string(d.listen_port) + "\n";
    r += "fwmark=" + std::to_string(d.fwmark) + "\n";
    for (const WgPeer& p : d.peers) {
        r += "public_key=" + p.public_key.hex() + "\n";
        if (p.preshared_key) r += "preshared_key=" + p.preshared_key->hex() + "\n";
        r += "protocol_version=1\n";
        if (p.endpoint) r += "endpoint=" + p.endpoint->str() + "\n";
        r += "last_handshake_time_sec=" + std::to_string(p.last_handshake_sec) + "\n";
        r += "tx_bytes=" + std::to_string(p.tx_bytes) + "\n";
        r += "rx_bytes=" + std::to_string(p.rx_bytes) + "\n";
        r += "persistent_keepalive_interval=" + std::to_string(p.persistent_keepalive) + "\n";
        for (const IpPrefix& ip : p.allowed_ips) r += "allowed_ip=" + ip.str() + "\n";
    }
    return r + "errno=0\n\n";
}

bool same(const WgDevice& a, const WgDevice& b) {
    if (a.private_key != b.private_key || a.listen_port != b.listen_port || a.fwmark != b.fwmark ||
        a.peers.size() != b.peers.size())
        return false;
    for (std::size_t i = 0; i < a.peers.size(); ++i) {
        const WgPeer& p = a.peers[i];
        const WgPeer& q = b.peers[i];
        if (p.public_key != q.public_key || p.preshared_key != q.preshared_key ||
            p.endpoint != q.endpoint || p.allowed_ips != q.allowed_ips ||
            p.persistent_keepalive != q.persistent_keepalive || p.rx_bytes != q.rx_bytes ||
            p.tx_bytes != q.tx_bytes || p.last_handshake_sec != q.last_handshake_sec)
            return false;
    }
    return true;
}

}  // namespace
}  // namespace nb

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    std::string_view reply(reinterpret_cast<const char*>(data), size);
    WgDevice dev;
    try {
        dev = parse_uapi_get_reply(reply);
    } catch (const WgError& e) {
        NB_FUZZ_CHECK_MSG(std::string_view(e.what()).starts_with("UAPI "), e.what());
        return 0;
    }
    check_promises(dev);
    std::string again = to_reply(dev);
    WgDevice back;
    try {
        back = parse_uapi_get_reply(again);
    } catch (const WgError& e) {
        fuzz::broken("the device written back parses", __FILE__, __LINE__,
                     std::string(e.what()) + "\n" + again);
    }
    NB_FUZZ_CHECK_MSG(same(dev, back), again);
    return 0;
}
