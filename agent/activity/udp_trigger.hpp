// The fallback trigger engine, for kernels that cannot run the tc programs: every idle
// peer's WireGuard endpoint points at its own UDP listener on a loopback address, and
// the first datagram WireGuard sends there, its handshake initiation, is the trigger.
// Once the real endpoint is set, the captured initiation is sent on to it from
// WireGuard's own port, so the handshake completes after one round trip instead of
// after WireGuard's 5 s retry.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/lazy/ports.hpp"
#include "base/unique_fd.hpp"

namespace nb {

// Whether `count` listeners fit this machine: the open-file limit (raised to the hard
// limit when needed) and the loopback address and port space. Throws
// std::runtime_error naming the limit and how to raise it; returns warnings otherwise.
std::vector<std::string> check_udp_listener_limits(uint64_t count);

// Listener address for slot `index`, `per_address` listeners to a 127.x address:
// 127.1.0.1, 127.1.0.2, ... (the whole of 127.0.0.0/8 is local on Linux).
IpAddr udp_listener_address(uint32_t index, uint32_t per_address);

class UdpTrigger : public HoldDatapath {
  public:
    struct Options {
        uint32_t capacity = 0;  // peer ids stay below this
        // Listeners per loopback address; 0: half the ephemeral port range.
        uint32_t per_address = 0;
        // Send the caught handshake initiation on to the real endpoint. Off, the first
        // packet waits for WireGuard's own retry (5 s), as with NetBird's listeners: only
        // for comparison.
        bool forward_initiation = true;
    };
    // A handshake initiation from WireGuard to an idle peer's listener.
    using TriggerFn = std::function<void(uint32_t peer_id)>;

    UdpTrigger(Options opts, TriggerFn on_trigger);
    ~UdpTrigger() override;

    // Readable when a listener has datagrams; call consume() then.
    int fd() const { return ep_.get(); }
    // Handles every waiting datagram. Returns how many triggers it reported.
    int consume();
    // WireGuard's port and fwmark: forwarded initiations leave as WireGuard's own.
    void set_wireguard_source(uint16_t listen_port, uint32_t fwmark);
    // WireGuard's configured listen port: no listener takes it on any address, or
    // WireGuard could not bind its wildcard socket when the interface comes up.
    void reserve_port(uint16_t port) { reserved_port_ = port; }
    // Whether an open listener holds `port` (a new ListenPort would collide with it).
    bool port_in_use(uint16_t port) const;
    size_t open_listeners() const { return open_; }
    uint64_t forwarded() const { return forwarded_; }
    uint64_t forward_skipped() const { return forward_skipped_; }

    // HoldDatapath
    void install_peer(uint32_t id, std::span<const IpPrefix> routes, SlotMode mode) override;
    void remove_peer(uint32_t id, std::span<const IpPrefix> routes) override;
    void add_routes(uint32_t, std::span<const IpPrefix>) override {}
    void remove_routes(std::span<const IpPrefix>) override {}
    SlotMode set_mode(uint32_t id, SlotMode mode) override;
    void release_pending(uint32_t, uint32_t) override {}
    void add_pending(uint32_t, uint32_t) override {}
    SlotCounters counters(uint32_t) const override { return {}; }
    uint32_t capacity() const override { return opts_.capacity; }
    std::optional<SockAddr> idle_endpoint(uint32_t id) override;
    void endpoint_set(uint32_t id, const SockAddr& ep) override;
    bool sees_traffic() const override { return false; }

  private:
    struct Listener {
        int fd = -1;
        SockAddr addr;
    };
    void open_listener(uint32_t id);
    void close_listener(uint32_t id);
    void forward(const std::array<uint8_t, 148>& initiation, const SockAddr& ep);

    Options opts_;
    TriggerFn on_trigger_;
    UniqueFd ep_;
    std::vector<Listener> listeners_;  // by peer id
    std::vector<SlotMode> modes_;
    size_t open_ = 0;
    // The last initiation each waking peer's listener caught, until it is forwarded.
    std::unordered_map<uint32_t, std::array<uint8_t, 148>> captured_;
    uint16_t wg_port_ = 0;
    uint16_t reserved_port_ = 0;
    uint32_t wg_fwmark_ = 0;
    UniqueFd raw4_, raw6_;  // send-only (IPPROTO_RAW): never receive copies of traffic
    uint64_t forwarded_ = 0;
    uint64_t forward_skipped_ = 0;  // send buffer full: left to WireGuard's own retry
};

}  // namespace nb
