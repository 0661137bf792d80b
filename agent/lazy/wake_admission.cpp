#include "agent/lazy/wake_admission.hpp"

#include <algorithm>

namespace nb {

WakeAdmission::WakeAdmission(uint32_t rate_per_s, uint32_t max_queued)
    : rate_(rate_per_s),
      max_queued_(max_queued ? max_queued : size_t{4} * rate_per_s),
      tokens_(rate_per_s) {}

void WakeAdmission::refill(uint64_t now_ns) {
    if (last_ns_ != 0 && now_ns > last_ns_)
        tokens_ =
            std::min<double>(rate_, tokens_ + static_cast<double>(now_ns - last_ns_) * rate_ / 1e9);
    if (now_ns > last_ns_) last_ns_ = now_ns;
}

WakeAdmission::Verdict WakeAdmission::request(uint32_t id, uint64_t now_ns) {
    if (!rate_) return Verdict::Now;
    if (queued_.contains(id)) return Verdict::Queued;
    refill(now_ns);
    // Nobody may overtake the queue: a token goes to the oldest waiter first.
    if (queued_.empty() && tokens_ >= 1) {
        tokens_ -= 1;
        return Verdict::Now;
    }
    if (queued_.size() >= max_queued_) {
        ++shed_;
        return Verdict::Shed;
    }
    ++deferred_;
    queued_.insert(id);
    order_.push_back(id);
    // Forgotten ids linger in order_ until admit() reaches them; keep them from piling up.
    if (order_.size() > 2 * max_queued_ + 64) {
        std::unordered_set<uint32_t> seen;
        std::deque<uint32_t> kept;
        for (uint32_t q : order_)
            if (queued_.contains(q) && seen.insert(q).second) kept.push_back(q);
        order_.swap(kept);
    }
    return Verdict::Queued;
}

std::vector<uint32_t> WakeAdmission::admit(uint64_t now_ns, size_t max) {
    std::vector<uint32_t> out;
    if (!rate_) return out;
    refill(now_ns);
    while (!order_.empty() && out.size() < max &&
           (tokens_ >= 1 || !queued_.contains(order_.front()))) {
        uint32_t id = order_.front();
        order_.pop_front();
        if (queued_.erase(id) == 0) continue;  // forgotten meanwhile
        tokens_ -= 1;
        out.push_back(id);
    }
    return out;
}

}  // namespace nb
