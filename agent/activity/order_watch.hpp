// Watches whether our tc programs still run first on the WireGuard device. Another tool
// can attach ahead of us at any time, and a program there that passes packets lets idle
// peers' traffic reach WireGuard unheld: the log says so when it appears (and when it
// goes), and `status` shows the last check.
#pragma once

#include <cstdint>
#include <string>

#include "loader/tc_order.hpp"

namespace nb {

class Datapath;

class OrderWatch {
  public:
    // Checks at once (the programs were just attached) and logs the result.
    OrderWatch(const Datapath& dp, std::string interface, uint64_t now_ns);

    // Checks again if kInterval has passed: a few syscalls and, with clsact, two netlink
    // dumps of the device's filters.
    void tick(uint64_t now_ns);
    // The last check (agent/control/status_map.hpp gives its wire form).
    const TcOrder& last() const { return last_; }

    static constexpr uint64_t kInterval = 5'000'000'000;  // ns

  private:
    void check();

    const Datapath& dp_;
    std::string interface_;
    TcOrder last_;
    bool checked_once_ = false;
    uint64_t next_ns_ = 0;
};

}  // namespace nb
