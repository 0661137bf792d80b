// What the lazy manager needs from the datapath, the re-injection path and the
// connector pool. The engine plugs in the real ones; unit tests plug in fakes for
// the state machine's pure logic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "agent/connector/connect_pool.hpp"
#include "agent/net/ip.hpp"

namespace nb {

struct SlotCounters {
    uint64_t held = 0, dropped = 0, tx_packets = 0, rx_packets = 0;
    uint64_t last_tx_ns = 0, last_rx_ns = 0;  // CLOCK_MONOTONIC, 0 = never
};

class HoldDatapath {
  public:
    virtual ~HoldDatapath() = default;
    virtual void install_peer(uint32_t id, const std::vector<IpPrefix>& routes, bool hold) = 0;
    virtual void remove_peer(uint32_t id, const std::vector<IpPrefix>& routes) = 0;
    // hold = Idle/Connecting; !hold = Connected (passes once pending reaches 0).
    virtual void set_hold(uint32_t id, bool hold) = 0;
    // Held packets the agent has re-injected (sent) or discarded.
    virtual void release_pending(uint32_t id, uint32_t n) = 0;
    virtual SlotCounters counters(uint32_t id) const = 0;
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
