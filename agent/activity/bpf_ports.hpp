// The lazy manager's ports backed by the real thing: the BPF datapath's maps and slots,
// and re-injection through an AF_PACKET socket on the device.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/activity/packet_injector.hpp"
#include "agent/lazy/ports.hpp"
#include "loader/datapath.hpp"

namespace nb {

inline nb_slot_state slot_state(SlotMode m) {
    switch (m) {
        case SlotMode::Hold:
            return NB_SLOT_HOLD;
        case SlotMode::Pass:
            return NB_SLOT_PASS;
        case SlotMode::Confirm:
            return NB_SLOT_PASS_CONFIRM;
    }
    return NB_SLOT_HOLD;
}

inline SlotMode slot_mode(nb_slot_state s) {
    switch (s) {
        case NB_SLOT_PASS:
            return SlotMode::Pass;
        case NB_SLOT_PASS_CONFIRM:
            return SlotMode::Confirm;
        default:
            return SlotMode::Hold;
    }
}

class BpfHold : public HoldDatapath {
  public:
    explicit BpfHold(Datapath& dp) : dp_(dp) {}
    void install_peer(uint32_t id, std::span<const IpPrefix> routes, SlotMode mode) override {
        dp_.reset_slot(id, slot_state(mode));
        add_routes(id, routes);
    }
    void remove_peer(uint32_t id, std::span<const IpPrefix> routes) override {
        remove_routes(routes);
        dp_.reset_slot(id, NB_SLOT_UNUSED);
    }
    void add_routes(uint32_t id, std::span<const IpPrefix> routes) override {
        for (const auto& r : routes) dp_.add_route(r, id);
    }
    void remove_routes(std::span<const IpPrefix> routes) override {
        for (const auto& r : routes) dp_.del_route(r);
    }
    SlotMode set_mode(uint32_t id, SlotMode mode) override {
        return slot_mode(dp_.exchange_state(id, slot_state(mode)));
    }
    void release_pending(uint32_t id, uint32_t n) override { dp_.release_pending(id, n); }
    void add_pending(uint32_t id, uint32_t n) override { dp_.add_pending(id, n); }
    void mute(uint32_t id, uint64_t until_ns) override { dp_.mute(id, until_ns); }
    SlotCounters counters(uint32_t id) const override {
        const nb_peer_slot& s = dp_.slot(id);
        auto load = [](const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); };
        return {load(s.held), load(s.dropped), dp_.jiffies_to_ns(load(s.last_tx_jiffies)),
                dp_.jiffies_to_ns(load(s.last_rx_jiffies))};
    }
    uint32_t capacity() const override { return dp_.max_peers(); }
    uint64_t lost_reports() const override { return dp_.ring_full_count(); }
    bool take_missed(uint32_t id) override { return dp_.take_missed(id); }
    SlotMode current_mode(uint32_t id) const override { return slot_mode(dp_.state(id)); }

  private:
    Datapath& dp_;
};

class InjectorSink : public PacketSink {
  public:
    explicit InjectorSink(int ifindex) : inj_(std::make_unique<PacketInjector>(ifindex)) {}
    uint64_t cookie() const { return inj_->socket_cookie(); }
    // A new device (WireGuard came back): a new socket, so a new cookie for the programs.
    void rebind(int ifindex) { inj_ = std::make_unique<PacketInjector>(ifindex); }
    bool inject(std::span<const uint8_t> packet) override {
        try {
            inj_->inject(packet);
            return true;
        } catch (const std::system_error& e) {
            spdlog::warn("re-injection failed: {}", e.what());
            return false;
        } catch (const std::invalid_argument& e) {
            spdlog::warn("held bytes are not an IP packet: {}", e.what());
            return false;
        }
    }

  private:
    std::unique_ptr<PacketInjector> inj_;
};

}  // namespace nb
