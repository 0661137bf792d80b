#include "base/log_storm.hpp"

namespace nb {

bool LogStorm::admit(const std::string& kind, uint64_t now_ns) {
    Window& w = kinds_[kind];
    if (w.logged == 0 && w.held_back == 0) w.start_ns = now_ns;
    if (w.logged < per_window_) {
        ++w.logged;
        return true;
    }
    ++w.held_back;
    return false;
}

void LogStorm::flush(uint64_t now_ns,
                     const std::function<void(const std::string&, uint64_t)>& emit) {
    for (auto it = kinds_.begin(); it != kinds_.end();) {
        Window& w = it->second;
        if (now_ns - w.start_ns < window_ns_) {
            ++it;
            continue;
        }
        if (w.held_back) emit(it->first, w.held_back);
        // A new window starts with the next line of this kind.
        it = kinds_.erase(it);
    }
}

}  // namespace nb
