// The lazy manager's peers: a table indexed by peer id (the id is the datapath's slot),
// the index by public key, the free ids removed peers left, and the groups.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include <absl/container/flat_hash_set.h>

#include "agent/lazy/peer_state.hpp"

namespace nb {

// Peer ids looked up by public key through the table: the index holds 4-byte ids in one
// flat array, where a node-based map costs about 70 bytes per peer.
struct PeerKeyHash {
    using is_transparent = void;
    const std::vector<ManagedPeer>* peers;
    size_t operator()(const WgKey& k) const;
    size_t operator()(uint32_t id) const { return (*this)((*peers)[id].key); }
};
struct PeerKeyEq {
    using is_transparent = void;
    const std::vector<ManagedPeer>* peers;
    const WgKey& key(uint32_t id) const { return (*peers)[id].key; }
    const WgKey& key(const WgKey& k) const { return k; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
        return key(a) == key(b);
    }
};

class PeerTable {
  public:
    using Groups = std::unordered_map<std::string, std::vector<uint32_t>>;

    PeerTable() = default;
    PeerTable(const PeerTable&) = delete;  // the index points into the table
    PeerTable& operator=(const PeerTable&) = delete;

    // Every slot, in id order, free ones too (their in_use is false).
    auto begin() { return peers_.begin(); }
    auto end() { return peers_.end(); }
    auto begin() const { return peers_.begin(); }
    auto end() const { return peers_.end(); }
    ManagedPeer& operator[](uint32_t id) { return peers_[id]; }
    const ManagedPeer& operator[](uint32_t id) const { return peers_[id]; }
    size_t slots() const { return peers_.size(); }
    // Peers in the table.
    size_t size() const { return by_key_.size(); }
    // Peers in one state, kept as they change: a metrics scrape or a short status
    // costs the same at a million peers as at ten.
    uint64_t count(PeerState s) const { return by_state_[static_cast<size_t>(s)]; }
    // Every state change of a peer in the table goes through here.
    void set_state(ManagedPeer& p, PeerState to);

    // The peer with this id, or null (out of range, or a free id).
    ManagedPeer* by_id(uint32_t id);
    ManagedPeer* find(const WgKey& key);
    const ManagedPeer* find(const WgKey& key) const;
    // Ids of the peers in the table (the index's order, which is not id order).
    const auto& ids() const { return by_key_; }

    // Ids for `n` new peers: free ones (newest first), then new ones past the end. They
    // stay free until take_free_ids(reused) says how many of the free ones were used.
    std::vector<uint32_t> next_ids(size_t n, size_t& reused) const;
    void take_free_ids(size_t reused) { free_ids_.resize(free_ids_.size() - reused); }
    void free_ids(const std::vector<uint32_t>& ids);

    // Room for `count` more peers with ids below `top`, exactly: growth by doubling
    // would leave up to half the table as slack.
    void reserve(uint32_t top, size_t count);
    // Puts a peer in its slot (p.id) and indexes it.
    void put(ManagedPeer p);
    // Takes a peer out: its slot is reset (in_use false). Its id is freed separately.
    void remove(uint32_t id);

    // Groups by name, with their member ids; rebuilt after each change of the map.
    void rebuild_groups();
    const Groups& groups() const { return groups_; }

    // Current specs, in id order (for the state file).
    std::vector<PeerSpec> specs() const;
    // Every peer's allowed IPs, one after the other (what routes through the interface).
    std::vector<IpPrefix> allowed_ips() const;

    // Memory held by the table and its index (what an idle peer costs the agent).
    size_t bytes() const;

  private:
    std::vector<ManagedPeer> peers_;  // index = peer id
    std::vector<uint32_t> free_ids_;
    absl::flat_hash_set<uint32_t, PeerKeyHash, PeerKeyEq> by_key_{0, PeerKeyHash{&peers_},
                                                                  PeerKeyEq{&peers_}};
    Groups groups_;
    std::array<uint64_t, 3> by_state_{};
};

}  // namespace nb
