#include "agent/lazy/trace_ring.hpp"

namespace nb {

void TraceRing::push(int64_t unix_ms, const TraceEvent& ev) {
    if (capacity_ == 0) return;
    if (events_.size() < capacity_) {
        events_.push_back({unix_ms, ev});
        return;
    }
    events_[next_] = {unix_ms, ev};
    next_ = (next_ + 1) % capacity_;
    ++overwritten_;
}

std::vector<StampedTraceEvent> TraceRing::snapshot() const {
    std::vector<StampedTraceEvent> out;
    out.reserve(events_.size());
    out.insert(out.end(), events_.begin() + static_cast<std::ptrdiff_t>(next_), events_.end());
    out.insert(out.end(), events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(next_));
    return out;
}

}  // namespace nb
