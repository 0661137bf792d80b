// What systemd hears from a Type=notify service (sd_notify): READY once the peers are
// installed and the programs attached, STATUS with the per-state counts as they change
// (at most once a second), RELOADING around SIGHUP, STOPPING at the end. Outside
// systemd (no NOTIFY_SOCKET) every call is a no-op.
#pragma once

#include <cstdint>
#include <string>

namespace nb::engine {

class ServiceNotifier {
  public:
    ServiceNotifier();
    bool active() const { return active_; }
    void ready(const std::string& status);
    void reloading();
    // The counts line, sent if it changed and a second has passed since the last.
    void status(const std::string& line, uint64_t now_ns);
    void stopping();

  private:
    void send(const std::string& message);
    bool active_ = false;
    std::string last_status_;
    uint64_t last_sent_ns_ = 0;
};

}  // namespace nb::engine
