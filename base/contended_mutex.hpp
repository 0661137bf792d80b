// A mutex that reports its contention: how often, how long and behind whom threads
// waited for it, per name, in one process-wide registry (for `nbagent debug bundle`).
//
// Lockable like std::mutex: std::lock_guard, std::unique_lock and
// std::condition_variable_any work with it. An uncontended lock() costs a try_lock and
// one relaxed store (the holder's return address); only a lock() that finds it taken
// reads the clock, twice, and records the wait.
//
// The holder: each acquisition stores the return address of its lock() call, inside
// the function that locked (std::lock_guard inlines; in an unoptimized build it is the
// guard's constructor). A waiter notes the address it found there; the longest wait's
// is kept and resolved with dladdr when a snapshot is taken: module+offset (for
// addr2line), and the symbol when the module exports it. Not a whole stack: that would
// cost every contended lock() an unwind.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/latency_histogram.hpp"

namespace nb {

struct LockSite;  // the registry's entry for one name

class ContendedMutex {
  public:
    // Mutexes with the same name share their numbers (e.g. one per pool object).
    explicit ContendedMutex(const char* name);
    ContendedMutex(const ContendedMutex&) = delete;
    ContendedMutex& operator=(const ContendedMutex&) = delete;

    void lock();
    bool try_lock();
    void unlock() { mu_.unlock(); }

  private:
    std::mutex mu_;
    std::atomic<const void*> holder_{nullptr};
    LockSite* site_;
};

struct LockStats {
    std::string name;
    // Contended acquisitions only: count, total wait (sum_ns), max and their spread.
    HistogramSnapshot waits;
    // Who held the lock when the longest wait began, as "module+0xOFFSET (symbol+0xOFF)";
    // "" before any wait.
    std::string longest_wait_holder;
};

// Every name made so far, in the order first made, those never contended too.
std::vector<LockStats> lock_snapshot();

// A line per lock, as render_histogram writes it, named "lock <name>", plus
// " holder=<where>" when there was a wait.
std::string render_locks(const std::vector<LockStats>& locks);

// A code address as lock_snapshot shows it ("module+0xOFFSET (symbol+0xOFF)").
std::string describe_code_address(const void* addr);

}  // namespace nb
