#include "agent/lazy/peer_table.hpp"

#include <absl/hash/hash.h>

#include <string_view>

namespace nb {

const WakeState ManagedPeer::kNoWake{};
const std::optional<std::string> ManagedPeer::kNoString{};
const std::vector<std::string> ManagedPeer::kNoGroups{};

PeerSpec ManagedPeer::spec() const {
    PeerSpec s;
    s.wg.public_key = key;
    s.wg.preshared_key = preshared_key();
    s.wg.allowed_ips = allowed_ips.to_vector();
    s.endpoint = endpoint_opt();
    s.keepalive = keepalive;
    s.connector = connector_spec();
    s.groups = groups();
    s.lazy = lazy;
    s.inactivity_threshold = own_threshold();
    return s;
}

size_t PeerKeyHash::operator()(const WgKey& k) const {
    // absl::Hash, not HashOf: Debian 11's Abseil (2020) predates HashOf.
    return absl::Hash<std::string_view>{}(
        std::string_view(reinterpret_cast<const char*>(k.bytes.data()), k.bytes.size()));
}

ManagedPeer* PeerTable::by_id(uint32_t id) {
    return id < peers_.size() && peers_[id].in_use ? &peers_[id] : nullptr;
}

ManagedPeer* PeerTable::find(const WgKey& key) {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : &peers_[*it];
}

const ManagedPeer* PeerTable::find(const WgKey& key) const {
    auto it = by_key_.find(key);
    return it == by_key_.end() ? nullptr : &peers_[*it];
}

std::vector<uint32_t> PeerTable::next_ids(size_t n, size_t& reused) const {
    std::vector<uint32_t> ids;
    ids.reserve(n);
    reused = std::min(free_ids_.size(), n);
    for (size_t k = 0; k < reused; ++k) ids.push_back(free_ids_[free_ids_.size() - 1 - k]);
    for (auto tail = static_cast<uint32_t>(peers_.size()); ids.size() < n; ++tail)
        ids.push_back(tail);
    return ids;
}

void PeerTable::free_ids(const std::vector<uint32_t>& ids) {
    free_ids_.insert(free_ids_.end(), ids.begin(), ids.end());
}

void PeerTable::reserve(uint32_t top, size_t count) {
    if (top <= peers_.size()) return;
    peers_.reserve(top);
    by_key_.reserve(by_key_.size() + count);
}

void PeerTable::put(ManagedPeer p) {
    uint32_t id = p.id;
    if (id >= peers_.size()) peers_.resize(id + 1);
    if (peers_[id].in_use) --by_state_[static_cast<size_t>(peers_[id].state)];
    peers_[id] = std::move(p);
    if (peers_[id].in_use) ++by_state_[static_cast<size_t>(peers_[id].state)];
    by_key_.insert(id);  // after the move: the index reads the key from the table
}

void PeerTable::set_state(ManagedPeer& p, PeerState to) {
    if (p.in_use) {
        --by_state_[static_cast<size_t>(p.state)];
        ++by_state_[static_cast<size_t>(to)];
    }
    p.state = to;
}

void PeerTable::remove(uint32_t id) {
    if (peers_[id].in_use) --by_state_[static_cast<size_t>(peers_[id].state)];
    by_key_.erase(peers_[id].key);  // while the table still has the key
    peers_[id] = ManagedPeer{};
    peers_[id].id = id;
}

void PeerTable::rebuild_groups() {
    groups_.clear();
    for (const auto& p : peers_) {
        if (!p.in_use) continue;
        for (const auto& g : p.groups()) groups_[g].push_back(p.id);
    }
}

std::vector<PeerSpec> PeerTable::specs() const {
    std::vector<PeerSpec> out;
    out.reserve(size());
    for (const auto& p : peers_)
        if (p.in_use) out.push_back(p.spec());
    return out;
}

std::vector<IpPrefix> PeerTable::allowed_ips() const {
    std::vector<IpPrefix> out;
    for (const auto& p : peers_)
        if (p.in_use) out.insert(out.end(), p.allowed_ips.begin(), p.allowed_ips.end());
    return out;
}

size_t PeerTable::bytes() const {
    size_t n =
        peers_.capacity() * sizeof(ManagedPeer) + by_key_.capacity() * (sizeof(uint32_t) + 1);
    for (const auto& p : peers_) {
        n += p.allowed_ips.heap_bytes();
        if (p.extra) n += sizeof(PeerExtra);
        if (p.wake) n += sizeof(WakeState);
    }
    return n;
}

}  // namespace nb
