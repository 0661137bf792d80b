// Fuzzes the wg-quick config parser (parse_wg_quick, agent/config/wg_quick.*), which
// reads files and text sent over the control socket. Any text parses or throws
// ConfigError "fuzz:<line>: ..."; a parsed config keeps the parser's promises and
// survives a round trip: written back as wg-quick text, it parses to the same config.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "agent/config/wg_quick.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace nb {
namespace {

void check_promises(const WgQuickConfig& cfg) {
    const InterfaceConfig& ifc = cfg.iface;
    NB_FUZZ_CHECK(!ifc.listen_port || *ifc.listen_port >= 1);
    NB_FUZZ_CHECK(!ifc.mtu || (*ifc.mtu >= 68 && *ifc.mtu <= 65535));
    for (const IpPrefix& a : ifc.addresses) NB_FUZZ_CHECK(fuzz::valid_prefix(a));
    std::set<WgKey> keys;
    std::set<IpPrefix> routed;
    for (const PeerConfig& p : cfg.peers) {
        NB_FUZZ_CHECK(keys.insert(p.public_key).second);
        for (const IpPrefix& ip : p.allowed_ips) {
            NB_FUZZ_CHECK(fuzz::normalized(ip));
            // One exact prefix routes to one peer, and appears once in it.
            NB_FUZZ_CHECK(routed.insert(ip).second);
        }
        for (std::size_t i = 0; i < p.groups.size(); ++i) {
            NB_FUZZ_CHECK(!p.groups[i].empty() && p.groups[i].size() <= 64);
            NB_FUZZ_CHECK(i == 0 || p.groups[i - 1] < p.groups[i]);  // sorted, unique
        }
        NB_FUZZ_CHECK(!p.connector || *p.connector == "static" ||
                      p.connector->starts_with("exec:"));
    }
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
}

// The config as wg-quick text (warnings and line numbers aside, everything it holds).
std::string to_text(const WgQuickConfig& cfg) {
    const InterfaceConfig& ifc = cfg.iface;
    std::string t = "[Interface]\n";
    if (ifc.private_key) t += "PrivateKey = " + ifc.private_key->base64() + "\n";
    if (ifc.listen_port) t += "ListenPort = " + std::to_string(*ifc.listen_port) + "\n";
    if (ifc.fwmark) t += "FwMark = " + std::to_string(*ifc.fwmark) + "\n";
    if (ifc.mtu) t += "MTU = " + std::to_string(*ifc.mtu) + "\n";
    for (const IpPrefix& a : ifc.addresses) t += "Address = " + a.str() + "\n";
    for (const PeerConfig& p : cfg.peers) {
        t += "[Peer]\nPublicKey = " + p.public_key.base64() + "\n";
        if (p.preshared_key) t += "PresharedKey = " + p.preshared_key->base64() + "\n";
        std::vector<std::string> ips;
        for (const IpPrefix& ip : p.allowed_ips) ips.push_back(ip.str());
        t += "AllowedIPs = " + join(ips) + "\n";
        if (p.endpoint) t += "Endpoint = " + *p.endpoint + "\n";
        t += "PersistentKeepalive = " + std::to_string(p.persistent_keepalive) + "\n";
        if (p.connector) t += "Connector = " + *p.connector + "\n";
        if (!p.groups.empty()) t += "Group = " + join(p.groups) + "\n";
        t += std::string("Lazy = ") + (p.lazy ? "on" : "off") + "\n";
    }
    return t;
}

bool same(const WgQuickConfig& a, const WgQuickConfig& b) {
    if (a.iface.private_key != b.iface.private_key || a.iface.listen_port != b.iface.listen_port ||
        a.iface.fwmark != b.iface.fwmark || a.iface.mtu != b.iface.mtu ||
        a.iface.addresses != b.iface.addresses || a.peers.size() != b.peers.size())
        return false;
    for (std::size_t i = 0; i < a.peers.size(); ++i) {
        const PeerConfig& p = a.peers[i];
        const PeerConfig& q = b.peers[i];
        if (p.public_key != q.public_key || p.preshared_key != q.preshared_key ||
            p.allowed_ips != q.allowed_ips || p.endpoint != q.endpoint ||
            p.persistent_keepalive != q.persistent_keepalive || p.connector != q.connector ||
            p.groups != q.groups || p.lazy != q.lazy)
            return false;
    }
    return true;
}

}  // namespace
}  // namespace nb

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    WgQuickConfig cfg;
    try {
        cfg = parse_wg_quick(text, "fuzz");
    } catch (const ConfigError& e) {
        NB_FUZZ_CHECK_MSG(std::string_view(e.what()).starts_with("fuzz:"), e.what());
        return 0;
    }
    check_promises(cfg);
    std::string again = to_text(cfg);
    WgQuickConfig back;
    try {
        back = parse_wg_quick(again, "again");
    } catch (const ConfigError& e) {
        fuzz::broken("the config written back parses", __FILE__, __LINE__,
                     std::string(e.what()) + "\n" + again);
    }
    NB_FUZZ_CHECK_MSG(same(cfg, back), again);
    return 0;
}
