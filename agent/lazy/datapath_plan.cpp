#include "agent/lazy/datapath_plan.hpp"

#include <spdlog/spdlog.h>

#include <exception>

namespace nb {

void DatapathPlan::install_peer(uint32_t id, std::span<const IpPrefix> routes, SlotMode mode) {
    ops_.push_back({Kind::InstallPeer, mode, id, routes});
}

void DatapathPlan::add_routes(uint32_t id, std::vector<IpPrefix> routes) {
    if (!routes.empty())
        ops_.push_back({Kind::AddRoutes, SlotMode::Hold, id, keep(std::move(routes))});
}

void DatapathPlan::remove_routes(uint32_t id, std::span<const IpPrefix> routes) {
    if (!routes.empty()) ops_.push_back({Kind::RemoveRoutes, SlotMode::Hold, id, routes});
}

void DatapathPlan::remove_routes(uint32_t id, std::vector<IpPrefix> routes) {
    if (!routes.empty()) remove_routes(id, keep(std::move(routes)));
}

std::span<const IpPrefix> DatapathPlan::keep(std::vector<IpPrefix> routes) {
    owned_.push_back(std::move(routes));
    return owned_.back();
}

DatapathPlan::Op DatapathPlan::inverse(const Op& op) {
    // Indexed by Kind: InstallPeer, UninstallPeer, AddRoutes, RemoveRoutes.
    static constexpr Kind kInverse[] = {Kind::UninstallPeer, Kind::InstallPeer, Kind::RemoveRoutes,
                                        Kind::AddRoutes};
    Op inv = op;
    inv.kind = kInverse[static_cast<size_t>(op.kind)];
    return inv;
}

void DatapathPlan::apply(HoldDatapath& dp, const Op& op) {
    switch (op.kind) {
        case Kind::InstallPeer:
            dp.install_peer(op.id, op.routes, op.mode);
            break;
        case Kind::UninstallPeer:
            dp.remove_peer(op.id, op.routes);
            break;
        case Kind::AddRoutes:
            dp.add_routes(op.id, op.routes);
            break;
        case Kind::RemoveRoutes:
            dp.remove_routes(op.routes);
            break;
    }
}

void DatapathPlan::run(HoldDatapath& dp) {
    try {
        for (done_ = 0; done_ < ops_.size(); ++done_) apply(dp, ops_[done_]);
    } catch (...) {
        undo(dp);
        throw;
    }
}

void DatapathPlan::undo(HoldDatapath& dp) noexcept {
    for (; done_ > 0; --done_) {
        try {
            apply(dp, inverse(ops_[done_ - 1]));
        } catch (const std::exception& e) {
            spdlog::error("taking back a datapath change (peer {}): {}", ops_[done_ - 1].id,
                          e.what());
        }
    }
}

}  // namespace nb
