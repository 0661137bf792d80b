// The lazy-peer datapath: the loaded tc programs and their maps, through the
// bpftool-generated skeleton. User space talks to the programs only via this class.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "base/net/ip.hpp"
#include "bpf/lazy_peer_kern_user.h"
#include "loader/jiffy_clock.hpp"
#include "loader/tc_attach.hpp"
#include "loader/tc_order.hpp"

struct lazy_peer;  // the skeleton

namespace nb {

struct DatapathError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct DatapathOptions {
    uint32_t max_peers = 65536;    // slots and route-map capacity
    uint32_t max_routes = 131072;  // allowed-IP entries (hosts and prefixes each)
    uint32_t ringbuf_bytes = NB_DEFAULT_RINGBUF_BYTES;
    uint32_t max_held = NB_DEFAULT_MAX_HELD;
    uint32_t l2_len = 0;  // 14 only for BPF_PROG_TEST_RUN
    // IPv4 host routes in [dense4_base, dense4_base + dense4_size) (host byte order) go to
    // an array indexed by offset (8 bytes per address) instead of the hash map; 0: none.
    uint32_t dense4_base = 0;
    uint32_t dense4_size = 0;
};

// A dense IPv4 range covering the given host routes (whole /24s, a quarter more above
// for growth), or size 0 where its array would cost more than 64 bytes per peer of
// `capacity` and more than 1 MiB.
struct Dense4Range {
    uint32_t base = 0, size = 0;
};
// The IPv4 host routes of a map, as much as the choice needs: a million peers' addresses
// need not be copied to find two bounds.
struct V4HostBounds {
    uint32_t lo = UINT32_MAX, hi = 0;  // host byte order
    uint64_t count = 0;
    void add(uint32_t v) {
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        ++count;
    }
};
Dense4Range dense4_range_for(const V4HostBounds& v4_hosts, uint32_t capacity);

class Datapath {
  public:
    explicit Datapath(const DatapathOptions& opts);  // opens and loads; throws DatapathError
    ~Datapath();
    Datapath(const Datapath&) = delete;
    Datapath& operator=(const Datapath&) = delete;

    void attach(int ifindex, AttachMode mode);
    void detach();
    AttachMode attach_mode() const;
    // Who runs before our programs on the device now; unchecked while not attached.
    TcOrder tc_order() const;

    // Routes map an allowed IP to a peer id; /32 and /128 go to the hash map.
    void add_route(const IpPrefix& p, uint32_t peer_id);
    void del_route(const IpPrefix& p);

    // Slots live in mmap'd map memory: reads are plain loads, writes that race
    // with the programs use atomics (see set_state / release_pending).
    nb_peer_slot& slot(uint32_t peer_id);
    const nb_peer_slot& slot(uint32_t peer_id) const;
    void set_state(uint32_t peer_id, nb_slot_state state);
    // Sets the state and returns the one it replaced (the programs may change it too).
    nb_slot_state exchange_state(uint32_t peer_id, nb_slot_state state);
    void release_pending(uint32_t peer_id, uint32_t n);  // held packets the agent discarded
    // More packets to release than the program counted: a held GSO super-packet the
    // agent cut into n + 1 segments, each replayed or discarded on its own.
    void add_pending(uint32_t peer_id, uint32_t n);
    void reset_slot(uint32_t peer_id, nb_slot_state state);
    nb_slot_state state(uint32_t peer_id) const;
    // Until CLOCK_MONOTONIC `until_ns` (rounded down), the programs drop the peer's
    // packets in HOLD without reporting them; 0 unmutes.
    void mute(uint32_t peer_id, uint64_t until_ns);
    // Clears the peer's "report lost" mark and returns whether it was set.
    bool take_missed(uint32_t peer_id);

    // CLOCK_MONOTONIC ns of a jiffies stamp from a slot (0 stays 0: never).
    uint64_t jiffies_to_ns(uint64_t jiffies) const;
    uint64_t ns_per_jiffy() const { return clock_.ns_per_jiffy; }

    void set_replay_cookie(uint64_t cookie);
    uint64_t ring_full_count() const;  // reports the ring buffer refused, ever
    // Kernel memory of each map (fdinfo "memlock"), as {name, bytes}.
    std::vector<std::pair<std::string, uint64_t>> map_memory() const;

    std::vector<int> map_fds() const;  // every map of the object, for reports
    int ringbuf_fd() const;
    int egress_fd() const;
    int ingress_fd() const;
    uint32_t max_peers() const { return opts_.max_peers; }
    const DatapathOptions& options() const { return opts_; }

  private:
    DatapathOptions opts_;
    lazy_peer* skel_ = nullptr;
    void load();
    void calibrate_clock();
    std::pair<uint64_t, uint64_t> clock_sample() const;  // {jiffies, monotonic ns}

    nb_peer_slot* slots_ = nullptr;
    size_t slots_len_ = 0;
    uint64_t* dense4_ = nullptr;  // mmap'd nb_dense4
    size_t dense4_len_ = 0;
    JiffyClock clock_;
    std::unique_ptr<TcAttachment> attachment_;
    uint32_t prefix_count_ = 0;
};

nb_host_key host_key(const IpAddr& a);
nb_lpm_key lpm_key(const IpPrefix& p);

}  // namespace nb
