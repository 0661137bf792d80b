#include "agent/activity/order_watch.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "loader/datapath.hpp"

namespace nb {

OrderWatch::OrderWatch(const Datapath& dp, std::string interface, uint64_t now_ns)
    : dp_(dp), interface_(std::move(interface)) {
    check();
    next_ns_ = now_ns + kInterval;
}

void OrderWatch::tick(uint64_t now_ns) {
    if (now_ns < next_ns_) return;
    next_ns_ = now_ns + kInterval;
    check();
}

void OrderWatch::check() {
    TcOrder now = dp_.tc_order();
    const bool first_check = !checked_once_;
    checked_once_ = true;
    if (!now.checked) {
        // Once per distinct reason, not every 5 s.
        if (first_check || now.error != last_.error)
            spdlog::warn("{}: cannot tell whether another program runs before ours: {}", interface_,
                         now.error);
        last_ = std::move(now);
        return;
    }
    for (const auto& p : now.ahead) {
        if (std::find(last_.ahead.begin(), last_.ahead.end(), p) != last_.ahead.end()) continue;
        spdlog::warn(
            "{}: {} runs before ours on {}: if it passes packets, idle peers' packets reach "
            "WireGuard without being held (and the peer is not woken)",
            interface_, describe(p), to_string(p.direction));
    }
    if (now.ahead.empty() && (first_check || !last_.checked || !last_.ahead.empty()))
        spdlog::info("{}: our tc programs run {} ({})", interface_, describe(now),
                     first_check ? to_string(dp_.attach_mode()) : "nothing runs before them now");
    last_ = std::move(now);
}

}  // namespace nb
