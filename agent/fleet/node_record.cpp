#include "agent/fleet/node_record.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace nb {

namespace {

// What one record may hold: a node is one host, not a routing table. A value beyond
// these is someone else's data under our prefix, refused before it costs memory.
constexpr size_t kMaxValueBytes = 64 * 1024;
constexpr size_t kMaxEndpoints = 16;
constexpr size_t kMaxAllowedIps = 1024;
constexpr size_t kMaxGroups = 64;
constexpr size_t kMaxText = 255;

[[noreturn]] void bad(std::string_view key, const std::string& what) {
    throw NodeRecordError(std::string("store key ") + std::string(key) + ": " + what);
}

// A field, or none when absent or null (a writer may leave out what it has not).
const nlohmann::json* member(const nlohmann::json& j, const char* name) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) return nullptr;
    return &*it;
}

std::string text(const nlohmann::json& v, std::string_view key, const std::string& field) {
    if (!v.is_string()) bad(key, field + " is not a string");
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > kMaxText) bad(key, field + " is longer than " + std::to_string(kMaxText));
    return s;
}

// A list of strings, each checked by `check` (which names what is wrong, or returns "").
template <typename Check>
std::vector<std::string> texts(const nlohmann::json& j, std::string_view key, const char* name,
                               size_t max, Check check) {
    std::vector<std::string> out;
    const nlohmann::json* v = member(j, name);
    if (!v) return out;
    if (!v->is_array()) bad(key, std::string(name) + " is not a list");
    if (v->size() > max) bad(key, std::string(name) + " has more than " + std::to_string(max));
    for (size_t i = 0; i < v->size(); ++i) {
        std::string field = std::string(name) + "[" + std::to_string(i) + "]";
        std::string s = text((*v)[i], key, field);
        if (std::string why = check(s); !why.empty()) bad(key, field + " '" + s + "': " + why);
        out.push_back(std::move(s));
    }
    return out;
}

std::string endpoint_problem(const std::string& s) {
    std::string host;
    uint16_t port = 0;
    if (!split_host_port(s, host, port)) return "not host:port";
    return "";
}

// Group and mesh names: path- and label-safe.
bool name_chars(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
}

std::string group_problem(const std::string& s) {
    if (s.empty()) return "empty";
    return name_chars(s) ? "" : "only letters, digits, '-', '_' and '.'";
}

}  // namespace

bool NodeRecord::same_peer(const NodeRecord& o) const {
    return public_key == o.public_key && allowed_ips == o.allowed_ips && groups == o.groups &&
           lazy == o.lazy;
}

void check_mesh_name(std::string_view mesh) {
    if (mesh.empty() || mesh.size() > 64 || !name_chars(mesh))
        throw NodeRecordError(std::string("mesh name '") + std::string(mesh) +
                              "': 1 to 64 of letters, digits, '-', '_' and '.'");
}

std::string nodes_prefix(std::string_view mesh) {
    return std::string("/nbagent/") + std::string(mesh) + "/nodes/";
}

std::string node_key(std::string_view mesh, const WgKey& key) {
    return nodes_prefix(mesh) + key.hex();
}

std::string encode_node(const NodeRecord& node) {
    nlohmann::json j;
    j["public_key"] = node.public_key.base64();
    j["endpoints"] = node.endpoints;
    auto& ips = j["allowed_ips"] = nlohmann::json::array();
    for (const IpPrefix& p : node.allowed_ips) ips.push_back(p.str());
    j["groups"] = node.groups;
    j["lazy"] = node.lazy;
    j["version"] = node.version;
    return j.dump();
}

NodeRecord decode_node(std::string_view prefix, std::string_view key, std::string_view value) {
    if (key.substr(0, prefix.size()) != prefix) bad(key, std::string("not under ").append(prefix));
    auto from_key = WgKey::from_hex(key.substr(prefix.size()));
    if (!from_key) bad(key, "does not end in a public key in hex");
    if (value.size() > kMaxValueBytes)
        bad(key, std::string("value of ") + std::to_string(value.size()) + " bytes (at most " +
                     std::to_string(kMaxValueBytes) + ")");
    nlohmann::json j = nlohmann::json::parse(value, nullptr, false);
    if (j.is_discarded() || !j.is_object()) bad(key, "value is not a JSON object");
    NodeRecord n;
    const nlohmann::json* pk = member(j, "public_key");
    if (!pk) bad(key, "public_key is missing");
    auto parsed = WgKey::from_base64(text(*pk, key, "public_key"));
    if (!parsed) bad(key, "public_key is not a WireGuard key");
    if (*parsed != *from_key) bad(key, "public_key differs from the key's");
    n.public_key = *parsed;
    n.endpoints = texts(j, key, "endpoints", kMaxEndpoints, endpoint_problem);
    for (const std::string& s :
         texts(j, key, "allowed_ips", kMaxAllowedIps,
               [](const std::string& s) { return IpPrefix::parse(s) ? "" : "not an IP prefix"; }))
        n.allowed_ips.push_back(*IpPrefix::parse(s));
    n.groups = texts(j, key, "groups", kMaxGroups, group_problem);
    std::sort(n.groups.begin(), n.groups.end());
    n.groups.erase(std::unique(n.groups.begin(), n.groups.end()), n.groups.end());
    if (const nlohmann::json* l = member(j, "lazy")) {
        if (!l->is_boolean()) bad(key, "lazy is not true or false");
        n.lazy = l->get<bool>();
    }
    if (const nlohmann::json* v = member(j, "version")) n.version = text(*v, key, "version");
    return n;
}

}  // namespace nb
