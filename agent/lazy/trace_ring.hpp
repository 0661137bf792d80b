// The last events of the manager's trace, kept at all times (not only while someone runs
// `nbagent trace`), so a debug bundle still shows a failure from minutes ago. Typed and
// stamped; put into words only when a bundle is taken.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/lazy/trace_event.hpp"

namespace nb {

struct StampedTraceEvent {
    int64_t unix_ms = 0;
    TraceEvent event;
};

class TraceRing {
  public:
    // capacity 0: nothing is kept.
    explicit TraceRing(size_t capacity) : capacity_(capacity) {}

    size_t capacity() const { return capacity_; }
    size_t size() const { return events_.size(); }
    // Events pushed out by newer ones, ever.
    uint64_t overwritten() const { return overwritten_; }

    // Grows up to capacity, then replaces the oldest: memory follows what was traced.
    void push(int64_t unix_ms, const TraceEvent& ev);
    // Oldest first.
    std::vector<StampedTraceEvent> snapshot() const;

  private:
    size_t capacity_;
    std::vector<StampedTraceEvent> events_;
    size_t next_ = 0;  // once full: the oldest, overwritten next
    uint64_t overwritten_ = 0;
};

}  // namespace nb
