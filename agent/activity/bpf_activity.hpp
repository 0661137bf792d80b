// Activity source backed by the tc programs: drains their ring buffer and hands
// held packets and remote-activity reports to the lazy manager.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

struct ring_buffer;

namespace nb {

class Datapath;

class BpfActivitySource {
  public:
    struct Callbacks {
        // What the program held for a peer in HOLD: one packet, or the segments of a
        // GSO super-packet (counted once by the program), in order. The bytes are only
        // valid during the call.
        std::function<void(uint32_t peer_id, std::span<const std::span<const uint8_t>> packets,
                           uint64_t ts_ns)>
            held;
        // The first traffic from a peer in HOLD (the remote side woke it) or in
        // PASS_CONFIRM (our handshake completed); the slot already passes.
        std::function<void(uint32_t peer_id, uint64_t ts_ns)> rx_wake;
    };

    BpfActivitySource(const Datapath& dp, Callbacks cb);
    ~BpfActivitySource();
    BpfActivitySource(const BpfActivitySource&) = delete;
    BpfActivitySource& operator=(const BpfActivitySource&) = delete;

    // Readable when records are waiting; call consume() then.
    int fd() const;
    // Handles every waiting record. Returns how many.
    int consume();
    uint64_t malformed_records() const { return malformed_; }
    uint64_t records() const { return records_; }  // handled since the start
    // Held GSO super-packets cut into segments, and those that could not be cut (handed
    // on whole: re-injecting one larger than the MTU fails and is counted as a drop).
    uint64_t gso_split() const { return gso_split_; }
    uint64_t gso_unsplit() const { return gso_unsplit_; }

  private:
    static int on_record(void* ctx, void* data, size_t size);

    const Datapath& dp_;
    Callbacks cb_;
    ring_buffer* rb_ = nullptr;
    uint64_t malformed_ = 0;
    uint64_t records_ = 0;
    uint64_t gso_split_ = 0;
    uint64_t gso_unsplit_ = 0;
};

}  // namespace nb
