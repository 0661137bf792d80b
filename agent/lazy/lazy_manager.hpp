// The lazy connection manager: owns every peer's state machine and drives WireGuard,
// the datapath and the connectors from activity events. Single-threaded: all calls
// come from the engine's event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/lazy/peer_state.hpp"
#include "agent/lazy/ports.hpp"

namespace nb {

struct LazyOptions {
    std::string interface;
    bool lazy = true;
    uint32_t max_held = 128;
    std::chrono::milliseconds exec_timeout{5000};
};

class LazyManager {
  public:
    using TraceFn = std::function<void(const nlohmann::json&)>;

    // `datapath` may be null in eager mode (no programs attached).
    LazyManager(LazyOptions opts, WgControl& wg, HoldDatapath* datapath, PacketSink* sink,
                ConnectQueue& connects, TraceFn trace);

    // Installs the peers in WireGuard and the datapath: Idle in lazy mode (no endpoint,
    // no keepalive), Connected with their endpoints in eager mode. All or nothing as
    // far as validation goes: bad connector specs or unresolvable eager endpoints
    // throw before anything is applied.
    // `update` carries device settings (key, port, replace_peers) to apply in the
    // same transaction.
    void install(std::vector<PeerSpec> peers, DeviceUpdate update = {});

    void on_held_packet(uint32_t id, std::span<const uint8_t> packet, uint64_t ts_ns);
    void on_remote_activity(uint32_t id, uint64_t ts_ns);
    void on_connect_done(const ConnectPool::Completion& done);

    // Back to Idle now (operator request; inactivity uses the same path).
    void make_idle(const WgKey& key, const std::string& reason);

    // For a clean exit: every peer gets its endpoint and keepalive back, so the
    // interface keeps working without the agent.
    void restore_all();

    AgentStatus status(bool detail) const;
    const ManagedPeer* find(const WgKey& key) const;
    size_t size() const { return peers_.size(); }

  private:
    ManagedPeer* by_id(uint32_t id);
    void start_connect(ManagedPeer& p, uint64_t ts_ns, const std::string& reason);
    void finish_connect(ManagedPeer& p, const SockAddr& ep);
    void fail_connect(ManagedPeer& p, const std::string& error);
    void drop_held(ManagedPeer& p);
    void release_hold(ManagedPeer& p);
    void replay(ManagedPeer& p, std::span<const uint8_t> packet);
    void transition(ManagedPeer& p, PeerState to, const std::string& reason);
    PeerStatus peer_status(const ManagedPeer& p, int64_t unix_now_ms, uint64_t mono_now_ns) const;

    LazyOptions opts_;
    WgControl& wg_;
    HoldDatapath* dp_;
    PacketSink* sink_;
    ConnectQueue& connects_;
    TraceFn trace_;
    std::vector<ManagedPeer> peers_;  // index = peer id
    std::unordered_map<WgKey, uint32_t, WgKeyHash> by_key_;
    std::unordered_map<uint64_t, uint32_t> jobs_;  // job id -> peer id
    uint64_t next_job_ = 1;
};

uint64_t monotonic_ns();
std::string rfc3339_now();

}  // namespace nb
