#include "agent/config/wg_quick.hpp"

#include "agent/config/config_file.hpp"
#include "agent/config/setting_values.hpp"
#include "agent/connector/connector.hpp"
#include "base/printable.hpp"
#include "base/text.hpp"
#include "base/time.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <unordered_map>

namespace nb {

namespace {

enum class Key {
    PrivateKey,
    ListenPort,
    Address,
    FwMark,
    Mtu,
    PublicKey,
    PresharedKey,
    AllowedIps,
    Endpoint,
    PersistentKeepalive,
    Connector,
    Group,
    Lazy,
    InactivityThreshold,
    Ignored,  // wg-quick-only: run by wg-quick itself, meaningless to the agent
};
constexpr size_t kKeyCount = static_cast<size_t>(Key::Ignored) + 1;

enum class Section { None, Interface, Peer };

struct KeyInfo {
    const char* name;  // lower case
    Section section;
    Key key;
};

constexpr KeyInfo kKeys[] = {
    {"privatekey", Section::Interface, Key::PrivateKey},
    {"listenport", Section::Interface, Key::ListenPort},
    {"address", Section::Interface, Key::Address},
    {"fwmark", Section::Interface, Key::FwMark},
    {"mtu", Section::Interface, Key::Mtu},
    {"dns", Section::Interface, Key::Ignored},
    {"table", Section::Interface, Key::Ignored},
    {"preup", Section::Interface, Key::Ignored},
    {"postup", Section::Interface, Key::Ignored},
    {"predown", Section::Interface, Key::Ignored},
    {"postdown", Section::Interface, Key::Ignored},
    {"saveconfig", Section::Interface, Key::Ignored},
    {"publickey", Section::Peer, Key::PublicKey},
    {"presharedkey", Section::Peer, Key::PresharedKey},
    {"allowedips", Section::Peer, Key::AllowedIps},
    {"endpoint", Section::Peer, Key::Endpoint},
    {"persistentkeepalive", Section::Peer, Key::PersistentKeepalive},
    {"connector", Section::Peer, Key::Connector},
    {"group", Section::Peer, Key::Group},
    {"lazy", Section::Peer, Key::Lazy},
    {"inactivitythreshold", Section::Peer, Key::InactivityThreshold},
};

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// Decimal digits only, no sign or spaces, no overflow past `max`.
std::optional<uint64_t> parse_uint(std::string_view s, uint64_t max) {
    if (s.empty()) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(c - '0');
        if (v > max) return std::nullopt;
    }
    return v;
}

std::optional<uint64_t> parse_hex_uint(std::string_view s, uint64_t max) {
    if (s.empty()) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return std::nullopt;
        v = v * 16 + static_cast<uint64_t>(d);
        if (v > max) return std::nullopt;
    }
    return v;
}

// "a.b.c.d/len" keeping host bits: an interface address names the host itself.
std::optional<IpPrefix> parse_interface_address(std::string_view s) {
    size_t slash = s.find('/');
    auto addr = IpAddr::parse(s.substr(0, slash));
    if (!addr) return std::nullopt;
    uint64_t len = static_cast<uint64_t>(addr->max_prefix());
    if (slash != std::string_view::npos) {
        auto v = parse_uint(s.substr(slash + 1), len);
        if (!v) return std::nullopt;
        len = *v;
    }
    IpPrefix p;
    p.addr = *addr;
    p.len = static_cast<uint8_t>(len);
    return p;
}

// Hostname syntax per RFC 1123 (underscore tolerated, as resolvers do). Resolution
// happens at wake time, so only the shape is checked here.
bool valid_hostname(std::string_view h) {
    if (h.back() == '.') h.remove_suffix(1);
    if (h.empty() || h.size() > 253) return false;
    bool only_digits_and_dots = true;
    size_t label = 0;
    for (char c : h) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && c != '-' && c != '_') return false;
        if (!(c >= '0' && c <= '9')) only_digits_and_dots = false;
        if (++label > 63) return false;
    }
    // Something like "10.1.2" is a malformed IPv4 address, which getaddrinfo would
    // otherwise read in the legacy inet_aton sense.
    return label != 0 && !only_digits_and_dots;
}

bool valid_endpoint(std::string_view v) {
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(v, host, port)) return false;
    auto ip = IpAddr::parse(host);
    if (v.front() == '[') return ip && ip->family == AF_INET6;
    return ip || valid_hostname(host);
}

// Group names end up in trace reasons ("group NAME") and control-socket replies, so they
// are kept to a plain, printable alphabet.
constexpr size_t kMaxGroupName = 64;

bool valid_group_name(std::string_view n) {
    if (n.empty() || n.size() > kMaxGroupName) return false;
    for (char c : n) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

struct PrefixHash {
    size_t operator()(const IpPrefix& p) const noexcept {
        std::string_view bytes(reinterpret_cast<const char*>(p.addr.bytes.data()),
                               p.addr.bytes.size());
        return std::hash<std::string_view>{}(bytes) ^
               (static_cast<size_t>(p.len) << 1 | static_cast<size_t>(p.addr.family == AF_INET6));
    }
};

class Parser {
  public:
    explicit Parser(std::string_view filename) : file_(filename) {}

    WgQuickConfig parse(std::string_view text) {
        size_t pos = 0;
        int lineno = 0;
        while (pos < text.size()) {
            size_t nl = text.find('\n', pos);
            std::string_view line =
                text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
            pos = nl == std::string_view::npos ? text.size() : nl + 1;
            line_ = ++lineno;
            // wg-quick strips from the first '#'; keys and base64 never contain one.
            line = trim(line.substr(0, line.find('#')));
            if (!line.empty()) parse_line(line);
        }
        finish_peer();
        return std::move(cfg_);
    }

  private:
    [[noreturn]] void fail(const std::string& msg) const {
        // The text may come from a control plane: what it quotes is made printable.
        throw ConfigError(printable(file_ + ":" + std::to_string(line_) + ": " + msg));
    }

    void parse_line(std::string_view line) {
        if (line.front() == '[') {
            if (line.back() != ']') fail("malformed section header '" + std::string(line) + "'");
            std::string_view name = line.substr(1, line.size() - 2);
            finish_peer();
            if (iequals(name, "Interface")) {
                section_ = Section::Interface;
            } else if (iequals(name, "Peer")) {
                section_ = Section::Peer;
                cfg_.peers.emplace_back().line = line_;
                peer_seen_.fill(0);
            } else {
                fail("unknown section '" + std::string(line) + "'");
            }
            return;
        }
        size_t eq = line.find('=');
        if (eq == std::string_view::npos)
            fail("malformed line '" + std::string(line) + "' (expected 'Key = Value')");
        std::string_view key = trim(line.substr(0, eq));
        std::string_view value = trim(line.substr(eq + 1));
        if (key.empty()) fail("malformed line '" + std::string(line) + "' (missing key)");
        if (section_ == Section::None) fail("key '" + std::string(key) + "' outside of a section");

        const KeyInfo* info = nullptr;
        for (const auto& k : kKeys)
            if (k.section == section_ && iequals(key, k.name)) info = &k;
        if (!info)
            fail("unknown key '" + std::string(key) + "' in [" +
                 (section_ == Section::Interface ? "Interface" : "Peer") + "]");
        check_duplicate(info->key, key);
        apply(info->key, key, value);
    }

    // Single-valued keys may appear once per section ([Interface] counts as one
    // section even if split); Address, AllowedIPs and Group accumulate.
    void check_duplicate(Key k, std::string_view key) {
        if (k == Key::Address || k == Key::AllowedIps || k == Key::Group || k == Key::Ignored)
            return;
        auto& seen = section_ == Section::Interface ? iface_seen_ : peer_seen_;
        int& first = seen[static_cast<size_t>(k)];
        if (first != 0)
            fail("duplicate key '" + std::string(key) + "' (first set at line " +
                 std::to_string(first) + ")");
        first = line_;
    }

    WgKey parse_key(std::string_view key, std::string_view value) const {
        auto k = WgKey::from_base64(value);
        if (!k) fail("invalid " + std::string(key) + " (expected 44-character base64 key)");
        return *k;
    }

    uint64_t parse_number(std::string_view key, std::string_view value, uint64_t min,
                          uint64_t max) const {
        auto v = parse_uint(value, max);
        if (!v || *v < min)
            fail("invalid " + std::string(key) + " '" + std::string(value) + "' (expected " +
                 std::to_string(min) + ".." + std::to_string(max) + ")");
        return *v;
    }

    template <typename F>
    void for_each_item(std::string_view key, std::string_view value, F&& f) const {
        size_t pos = 0;
        while (true) {
            size_t comma = value.find(',', pos);
            std::string_view item = trim(value.substr(pos, comma - pos));
            if (item.empty()) fail("empty item in " + std::string(key) + " list");
            f(item);
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
    }

    // The key table guarantees `k` belongs to the current section, so peer keys see a
    // current peer.
    void apply(Key k, std::string_view key, std::string_view value) {
        if (section_ == Section::Interface)
            apply_interface_key(k, key, value);
        else
            apply_peer_key(k, key, value);
    }

    void apply_interface_key(Key k, std::string_view key, std::string_view value) {
        InterfaceConfig& ifc = cfg_.iface;
        switch (k) {
            case Key::Ignored:
                cfg_.warnings.push_back(printable(file_ + ":" + std::to_string(line_) +
                                                  ": ignoring wg-quick-only key '" +
                                                  std::string(key) + "'"));
                break;
            case Key::PrivateKey:
                ifc.private_key = parse_key(key, value);
                break;
            case Key::ListenPort:
                ifc.listen_port = static_cast<uint16_t>(parse_number(key, value, 1, 65535));
                break;
            case Key::Address:
                for_each_item(key, value, [&](std::string_view item) {
                    auto p = parse_interface_address(item);
                    if (!p)
                        fail("invalid address '" + std::string(item) + "' in " + std::string(key));
                    ifc.addresses.push_back(*p);
                });
                break;
            case Key::FwMark: {
                if (iequals(value, "off")) {
                    ifc.fwmark = 0;
                    break;
                }
                std::optional<uint64_t> v;
                if (value.size() > 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X'))
                    v = parse_hex_uint(value.substr(2), UINT32_MAX);
                else
                    v = parse_uint(value, UINT32_MAX);
                if (!v)
                    fail("invalid " + std::string(key) + " '" + std::string(value) +
                         "' (expected a 32-bit number, 0x-hex, or 'off')");
                ifc.fwmark = static_cast<uint32_t>(*v);
                break;
            }
            case Key::Mtu:
                // 68 is the IPv4 minimum MTU; WireGuard cannot exceed 65535 either.
                ifc.mtu = static_cast<uint32_t>(parse_number(key, value, 68, 65535));
                break;
            default:  // a [Peer] key: the key table keeps it out of [Interface]
                break;
        }
    }

    void apply_peer_key(Key k, std::string_view key, std::string_view value) {
        PeerConfig& peer = cfg_.peers.back();
        switch (k) {
            case Key::PublicKey: {
                peer.public_key = parse_key(key, value);
                auto [it, inserted] = peer_by_key_.emplace(peer.public_key, peer.line);
                if (!inserted)
                    fail("duplicate PublicKey " + std::string(value) + ": the peer at line " +
                         std::to_string(it->second) + " already uses it");
                break;
            }
            case Key::PresharedKey:
                peer.preshared_key = parse_key(key, value);
                break;
            case Key::AllowedIps:
                // wg accepts an empty AllowedIPs, meaning no routes for the peer.
                if (value.empty()) break;
                for_each_item(key, value,
                              [&](std::string_view item) { add_allowed_ip(key, item); });
                break;
            case Key::Endpoint:
                if (!valid_endpoint(value))
                    fail("invalid " + std::string(key) + " '" + std::string(value) +
                         "' (expected host:port or [IPv6]:port with port 1..65535)");
                peer.endpoint = std::string(value);
                break;
            case Key::PersistentKeepalive:
                peer.persistent_keepalive =
                    iequals(value, "off")
                        ? 0
                        : static_cast<uint16_t>(parse_number(key, value, 0, 65535));
                break;
            case Key::Connector:
                peer.connector = parse_connector(key, value);
                break;
            case Key::Group:
                add_groups(key, value);
                break;
            case Key::Lazy:
                peer.lazy = parse_lazy(key, value);
                break;
            case Key::InactivityThreshold:
                peer.inactivity_threshold = parse_threshold(key, value);
                break;
            default:  // an [Interface] key: the key table keeps it out of [Peer]
                break;
        }
    }

    std::string parse_connector(std::string_view key, std::string_view value) const {
        if (!parse_connector_spec(value))
            fail("invalid " + std::string(key) + " '" + std::string(value) + "' (expected " +
                 connector_spellings() + ")");
        return std::string(value);
    }

    // As --inactivity-threshold takes it (agent/config/setting_values.hpp).
    std::chrono::milliseconds parse_threshold(std::string_view key, std::string_view value) const {
        try {
            return parse_inactivity_threshold(value);
        } catch (const std::invalid_argument& e) {
            fail(std::string(key) + ": " + e.what());
        }
        return {};
    }

    bool parse_lazy(std::string_view key, std::string_view value) const {
        auto v = parse_config_switch(value);
        if (!v)
            fail("invalid " + std::string(key) + " '" + std::string(value) + "' (" +
                 expected_one_of(kConfigSwitchNames, value) + ")");
        return *v;
    }

    // Not for_each_item: an empty name gets the same "invalid group name" message as a
    // bad one, so every rejected name is reported the same way.
    void add_groups(std::string_view key, std::string_view value) {
        std::vector<std::string>& groups = cfg_.peers.back().groups;
        size_t pos = 0;
        while (true) {
            size_t comma = value.find(',', pos);
            std::string_view name = trim(value.substr(pos, comma - pos));
            if (!valid_group_name(name))
                fail("invalid group name '" + std::string(name) + "' in " + std::string(key) +
                     " (expected 1.." + std::to_string(kMaxGroupName) +
                     " characters of A-Z a-z 0-9 _ . -)");
            // Kept sorted as it grows, so repeats (same line or later lines) collapse.
            auto it = std::lower_bound(groups.begin(), groups.end(), name);
            if (it == groups.end() || *it != name) groups.insert(it, std::string(name));
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
    }

    void add_allowed_ip(std::string_view key, std::string_view item) {
        bool host_bits = false;
        auto p = IpPrefix::parse(item, &host_bits);
        if (!p) fail("invalid prefix '" + std::string(item) + "' in " + std::string(key));
        if (host_bits)
            cfg_.warnings.push_back(file_ + ":" + std::to_string(line_) + ": " + std::string(key) +
                                    " '" + std::string(item) + "' has host bits set; using " +
                                    p->str());
        PeerConfig& peer = cfg_.peers.back();
        // Nested prefixes are fine (longest-prefix match, as in WireGuard), but one exact
        // prefix can route to only one peer.
        auto [it, inserted] = owner_.emplace(*p, peer.line);
        if (!inserted) {
            if (it->second == peer.line) return;  // repeated within one peer: harmless
            fail("AllowedIPs " + p->str() + " of the peer at line " + std::to_string(peer.line) +
                 " is already routed to the peer at line " + std::to_string(it->second));
        }
        peer.allowed_ips.push_back(*p);
    }

    void finish_peer() {
        if (section_ == Section::Peer && peer_seen_[static_cast<size_t>(Key::PublicKey)] == 0) {
            line_ = cfg_.peers.back().line;
            fail("[Peer] has no PublicKey");
        }
    }

    std::string file_;
    int line_ = 0;
    Section section_ = Section::None;
    WgQuickConfig cfg_;
    std::array<int, kKeyCount> iface_seen_{};
    std::array<int, kKeyCount> peer_seen_{};
    std::unordered_map<WgKey, int, WgKeyHash> peer_by_key_;  // -> [Peer] line
    std::unordered_map<IpPrefix, int, PrefixHash> owner_;    // allowed IP -> [Peer] line
};

}  // namespace

WgQuickConfig parse_wg_quick(std::string_view text, std::string_view filename) {
    return Parser(filename).parse(text);
}

WgQuickConfig load_wg_quick(const std::string& path) {
    return parse_wg_quick(read_config_file(path), path);
}

}  // namespace nb
