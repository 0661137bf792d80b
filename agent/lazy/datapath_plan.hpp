// A network-map change's datapath part, as a list of operations each with its inverse:
// run() applies them in order, and when a later step of the change fails (WireGuard
// refuses the update) undo() takes back what ran, newest first. The rollback is derived
// from the plan, so it cannot drift from what was done.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "agent/lazy/ports.hpp"

namespace nb {

class DatapathPlan {
  public:
    // `routes` must outlive the plan (the peers' own lists); the vector overloads keep
    // a copy (the difference of two lists, made for the plan).
    void install_peer(uint32_t id, std::span<const IpPrefix> routes, SlotMode mode);
    void add_routes(uint32_t id, std::vector<IpPrefix> routes);
    // Routes of peer `id` (undo gives them back to it).
    void remove_routes(uint32_t id, std::span<const IpPrefix> routes);
    void remove_routes(uint32_t id, std::vector<IpPrefix> routes);

    // Applies every operation in order. If one throws, the ones done are undone and
    // the error goes on.
    void run(HoldDatapath& dp);
    // Undoes what run() did, newest first. An undo that fails is logged, and the others
    // still run: the caller is already reporting the failure that made it undo.
    void undo(HoldDatapath& dp) noexcept;

    size_t size() const { return ops_.size(); }

  private:
    enum class Kind : uint8_t { InstallPeer, UninstallPeer, AddRoutes, RemoveRoutes };
    struct Op {
        Kind kind;
        SlotMode mode;
        uint32_t id;
        std::span<const IpPrefix> routes;
    };
    static Op inverse(const Op& op);
    static void apply(HoldDatapath& dp, const Op& op);
    std::span<const IpPrefix> keep(std::vector<IpPrefix> routes);

    std::vector<Op> ops_;
    // Lists the plan owns; a vector's elements stay where they are when it moves.
    std::vector<std::vector<IpPrefix>> owned_;
    size_t done_ = 0;  // operations run() applied
};

}  // namespace nb
