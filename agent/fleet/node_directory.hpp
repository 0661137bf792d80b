// The fleet as this agent last heard it from the store: every node's record, kept
// current by a watch. Wakes read endpoints from here, never from the store, so a wake
// does not wait on a round trip and still works while the store is down.
// Thread-safe: the store's thread writes, connector workers and the event loop read.
#pragma once

#include <cstdint>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/fleet/node_record.hpp"

namespace nb {

// One key of the store under the mesh prefix, as a range read or a watch event gives it.
struct StoreEntry {
    std::string key;
    std::string value;  // empty for a deletion
    bool deleted = false;
};

// What an update changed, for the engine.
struct DirectoryChange {
    // A node came or went, or changed what the map takes from it (allowed IPs, groups,
    // lazy): the map is built again and applied as a diff.
    bool map_changed = false;
    // Nodes still present whose endpoints changed: a Connected peer gets the new one.
    std::vector<WgKey> moved;
    // Records refused (NodeRecordError's message each): left out of the directory, so
    // a bad writer cannot make this agent route to something half-parsed.
    std::vector<std::string> rejected;
    bool any() const { return map_changed || !moved.empty(); }
};

class NodeDirectory {
  public:
    explicit NodeDirectory(std::string mesh);

    const std::string& prefix() const { return prefix_; }
    // Everything under the prefix, as a range read at `revision` gave it.
    DirectoryChange replace(const std::vector<StoreEntry>& entries, int64_t revision);
    // Watch events up to `revision`, in the store's order.
    DirectoryChange apply(const std::vector<StoreEntry>& events, int64_t revision);

    // The endpoints a node published; empty when it is unknown or published none.
    std::vector<std::string> endpoints_of(const WgKey& key) const;
    std::optional<NodeRecord> find(const WgKey& key) const;
    std::vector<NodeRecord> nodes() const;  // sorted by public key
    int64_t revision() const;
    size_t size() const;

  private:
    // The public key a store key under the prefix names, if it does.
    std::optional<WgKey> key_in(std::string_view store_key) const;
    // One event into the map, under the lock; records what it changed in `change`.
    void apply_one(const StoreEntry& e, DirectoryChange& change);

    std::string prefix_;
    mutable std::shared_mutex mu_;
    std::unordered_map<WgKey, NodeRecord, WgKeyHash> nodes_;
    int64_t revision_ = 0;
};

}  // namespace nb
