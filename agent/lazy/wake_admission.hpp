// How many wakes of unproven peers reach WireGuard per second.
//
// Every wake makes WireGuard send handshake initiations, and a local process that
// sweeps the addresses of 100k idle peers makes 100k wakes at once. WireGuard then
// spends seconds on initiations to peers that may never answer, and a real peer's
// handshake waits behind them (wireguard-go: 5 s and more at 20k peers). So wakes of
// peers that have not proven themselves since their last failure go through a token
// bucket: `rate` per second (a second's worth may come at once); the rest wait their
// turn in a FIFO of at most `max_queued`, and beyond that they are shed like a wake
// that backs off. Peers with a proven handshake never wait here. Time is passed in, so
// tests need no clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_set>
#include <vector>

namespace nb {

class WakeAdmission {
  public:
    enum class Verdict { Now, Queued, Shed };

    // rate 0: no limit (every request is Now). max_queued 0: four seconds' worth.
    explicit WakeAdmission(uint32_t rate_per_s = 0, uint32_t max_queued = 0);

    bool limited() const { return rate_ != 0; }
    // A wake of peer `id` is asked for. Queued: it starts when admit() returns it (asking
    // again meanwhile answers Queued and changes nothing).
    Verdict request(uint32_t id, uint64_t now_ns);
    // The queued peers whose turn has come, oldest first; at most `max` (the rest keep
    // their place and tokens).
    std::vector<uint32_t> admit(uint64_t now_ns, size_t max = SIZE_MAX);
    // The peer no longer waits (removed, or woken another way).
    void forget(uint32_t id) { queued_.erase(id); }
    bool is_queued(uint32_t id) const { return queued_.contains(id); }

    size_t queued() const { return queued_.size(); }
    uint64_t deferred() const { return deferred_; }  // requests that had to wait, ever
    uint64_t shed() const { return shed_; }          // requests refused, queue full, ever

  private:
    void refill(uint64_t now_ns);

    uint32_t rate_;
    size_t max_queued_;
    double tokens_;
    uint64_t last_ns_ = 0;
    std::deque<uint32_t> order_;  // may hold ids forgotten since: skipped by admit()
    std::unordered_set<uint32_t> queued_;
    uint64_t deferred_ = 0, shed_ = 0;
};

}  // namespace nb
