// What one agent of a fleet publishes about itself in the store, and where: the node
// record under /nbagent/<mesh>/nodes/<public key, hex>. Other agents make it a peer of
// their network map (allowed IPs, groups, lazy) and wake it at its endpoints.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "agent/wg/key.hpp"
#include "base/net/ip.hpp"

namespace nb {

// A record or key the store gave that is not what a node writes: the message names the
// key and the field. The record is left out of the map, never half-used.
struct NodeRecordError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct NodeRecord {
    WgKey public_key;
    // Where its WireGuard listens, "host:port" as published; the first one is dialled.
    std::vector<std::string> endpoints;
    std::vector<IpPrefix> allowed_ips;  // what the others route to it
    std::vector<std::string> groups;    // sorted, unique (wake and idle together)
    bool lazy = true;                   // false: the others keep it connected
    std::string version;                // the agent's, for operators
    bool operator==(const NodeRecord&) const = default;
    // Whether the others' network maps see a difference (everything but the endpoints
    // and the version): a change there is a map diff, an endpoint change is not.
    bool same_peer(const NodeRecord& o) const;
};

// A mesh name: 1-64 of [A-Za-z0-9._-]. Throws NodeRecordError naming it otherwise.
void check_mesh_name(std::string_view mesh);
// "/nbagent/<mesh>/nodes/": every node of the mesh, for a range or a watch.
std::string nodes_prefix(std::string_view mesh);
// nodes_prefix(mesh) + the key in hex (path-safe, unlike base64).
std::string node_key(std::string_view mesh, const WgKey& key);

// The record as the store holds it: one JSON object.
std::string encode_node(const NodeRecord& node);
// The record under `key` (a full key under `prefix`). Throws NodeRecordError naming the
// key when the value is not a node's JSON, a field has the wrong type or value, or the
// public key differs from the one in the key.
NodeRecord decode_node(std::string_view prefix, std::string_view key, std::string_view value);

}  // namespace nb
