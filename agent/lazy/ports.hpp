// What the lazy manager needs from the datapath, the re-injection path and the
// connector pool. The engine plugs in the real ones; unit tests plug in fakes for
// the state machine's pure logic.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "agent/connector/connect_pool.hpp"
#include "base/net/ip.hpp"

namespace nb {

struct SlotCounters {
    uint64_t held = 0, dropped = 0;
    uint64_t last_tx_ns = 0, last_rx_ns = 0;  // CLOCK_MONOTONIC, 0 = never
};

// What the programs do with a peer's packets (bpf/lazy_peer_kern_user.h has the slot
// states these map to).
enum class SlotMode {
    Hold,     // Idle or Connecting: hold everything for the agent
    Pass,     // Connected: pass once every held packet was replayed
    Confirm,  // endpoint set, handshake unproven: hold (replays pass), report the first reply
};

class HoldDatapath {
  public:
    virtual ~HoldDatapath() = default;
    virtual void install_peer(uint32_t id, std::span<const IpPrefix> routes, SlotMode mode) = 0;
    virtual void remove_peer(uint32_t id, std::span<const IpPrefix> routes) = 0;
    virtual void add_routes(uint32_t id, std::span<const IpPrefix> routes) = 0;
    virtual void remove_routes(std::span<const IpPrefix> routes) = 0;
    // Returns the mode the slot had: the ingress program may have moved Hold or
    // Confirm to Pass on its own (the peer talked to us).
    virtual SlotMode set_mode(uint32_t id, SlotMode mode) = 0;
    // Held packets the agent has re-injected (sent) or discarded.
    virtual void release_pending(uint32_t id, uint32_t n) = 0;
    // A held report that became n + 1 packets (a GSO super-packet cut into segments):
    // each is then released on its own.
    virtual void add_pending(uint32_t id, uint32_t n) = 0;
    // Until CLOCK_MONOTONIC `until_ns` the peer's packets may be dropped (and counted)
    // without a report: the manager would drop them anyway. 0 ends it. A hint: engines
    // that cannot do it report as before.
    virtual void mute(uint32_t /*id*/, uint64_t /*until_ns*/) {}
    virtual SlotCounters counters(uint32_t id) const = 0;
    virtual uint32_t capacity() const = 0;  // peer ids must stay below this

    // Engines differ in what they see (the BPF engine sees every packet; the UDP
    // engine only WireGuard's handshake initiations), so the manager asks.
    // The endpoint WireGuard gets for an idle peer: none for the BPF engine, the peer's
    // listener (opened now if needed) for the UDP engine.
    virtual std::optional<SockAddr> idle_endpoint(uint32_t /*id*/) { return std::nullopt; }
    // The real endpoint is in WireGuard now (the UDP engine forwards the captured
    // handshake initiation there).
    virtual void endpoint_set(uint32_t /*id*/, const SockAddr& /*ep*/) {}
    // Whether counters() carries traffic and the first reply is reported (on_rx_wake).
    virtual bool sees_traffic() const { return true; }

    // Reports (held packets, first replies) the datapath could not deliver because the
    // agent fell behind, counted since it started; each such peer is marked. When the
    // count grows, the manager takes the marks and recovers those peers.
    virtual uint64_t lost_reports() const { return 0; }
    virtual bool take_missed(uint32_t /*id*/) { return false; }
    virtual SlotMode current_mode(uint32_t /*id*/) const { return SlotMode::Hold; }
};

class PacketSink {
  public:
    virtual ~PacketSink() = default;
    // Sends synchronously: when it returns true the packet is in the device's queue.
    // False: it was dropped.
    virtual bool inject(std::span<const uint8_t> packet) = 0;
};

class ConnectQueue {
  public:
    virtual ~ConnectQueue() = default;
    virtual void submit(ConnectPool::Job job) = 0;
};

}  // namespace nb
