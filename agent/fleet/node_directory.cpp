#include "agent/fleet/node_directory.hpp"

#include <algorithm>
#include <mutex>

namespace nb {

NodeDirectory::NodeDirectory(std::string mesh) : prefix_(nodes_prefix(mesh)) {}

std::optional<WgKey> NodeDirectory::key_in(std::string_view store_key) const {
    return WgKey::from_hex(store_key.substr(std::min(prefix_.size(), store_key.size())));
}

void NodeDirectory::apply_one(const StoreEntry& e, DirectoryChange& change) {
    auto key = key_in(e.key);
    if (e.deleted) {
        // A deleted key that never held a valid record changes nothing.
        if (key && nodes_.erase(*key)) change.map_changed = true;
        return;
    }
    NodeRecord rec;
    try {
        rec = decode_node(prefix_, e.key, e.value);
    } catch (const NodeRecordError& err) {
        change.rejected.push_back(err.what());
        // What stood there before is no longer what the store says: out with it.
        if (key && nodes_.erase(*key)) change.map_changed = true;
        return;
    }
    auto [it, inserted] = nodes_.try_emplace(rec.public_key, rec);
    if (inserted) {
        change.map_changed = true;
        return;
    }
    if (!it->second.same_peer(rec)) change.map_changed = true;
    if (it->second.endpoints != rec.endpoints) change.moved.push_back(rec.public_key);
    it->second = std::move(rec);
}

DirectoryChange NodeDirectory::replace(const std::vector<StoreEntry>& entries, int64_t revision) {
    DirectoryChange change;
    std::unique_lock lock(mu_);
    // Nodes the range no longer has are gone; the rest are compared as events would be,
    // so a re-sync after a disconnect that finds nothing new changes nothing.
    std::unordered_map<WgKey, NodeRecord, WgKeyHash> before;
    before.swap(nodes_);
    for (const StoreEntry& e : entries) {
        if (e.deleted) continue;
        if (auto key = key_in(e.key)) {
            if (auto it = before.find(*key); it != before.end()) {
                nodes_.emplace(it->first, std::move(it->second));
                before.erase(it);
            }
        }
        apply_one(e, change);
    }
    // Seen before but not in the range: deleted while we did not watch.
    if (!before.empty()) change.map_changed = true;
    // A key that was present and is now refused was erased by apply_one; a key present
    // before and absent now is counted above. Nothing else needs comparing.
    revision_ = revision;
    return change;
}

DirectoryChange NodeDirectory::apply(const std::vector<StoreEntry>& events, int64_t revision) {
    DirectoryChange change;
    std::unique_lock lock(mu_);
    for (const StoreEntry& e : events) apply_one(e, change);
    revision_ = std::max(revision_, revision);
    // One event batch may move a node twice: report it once.
    std::sort(change.moved.begin(), change.moved.end());
    change.moved.erase(std::unique(change.moved.begin(), change.moved.end()), change.moved.end());
    return change;
}

std::vector<std::string> NodeDirectory::endpoints_of(const WgKey& key) const {
    std::shared_lock lock(mu_);
    auto it = nodes_.find(key);
    return it == nodes_.end() ? std::vector<std::string>{} : it->second.endpoints;
}

std::optional<NodeRecord> NodeDirectory::find(const WgKey& key) const {
    std::shared_lock lock(mu_);
    auto it = nodes_.find(key);
    if (it == nodes_.end()) return std::nullopt;
    return it->second;
}

std::vector<NodeRecord> NodeDirectory::nodes() const {
    std::vector<NodeRecord> out;
    {
        std::shared_lock lock(mu_);
        out.reserve(nodes_.size());
        for (const auto& [k, n] : nodes_) out.push_back(n);
    }
    std::sort(out.begin(), out.end(),
              [](const NodeRecord& a, const NodeRecord& b) { return a.public_key < b.public_key; });
    return out;
}

int64_t NodeDirectory::revision() const {
    std::shared_lock lock(mu_);
    return revision_;
}

size_t NodeDirectory::size() const {
    std::shared_lock lock(mu_);
    return nodes_.size();
}

}  // namespace nb
