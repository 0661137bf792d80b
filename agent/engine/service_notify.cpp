#include "agent/engine/service_notify.hpp"

#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>

#include <spdlog/spdlog.h>

#include "base/time.hpp"

namespace nb::engine {

ServiceNotifier::ServiceNotifier() : active_(std::getenv("NOTIFY_SOCKET") != nullptr) {}

void ServiceNotifier::send(const std::string& message) {
    if (!active_) return;
    const int rc = sd_notify(0, message.c_str());
    if (rc < 0) spdlog::warn("telling systemd \"{}\": {}", message, std::strerror(-rc));
}

void ServiceNotifier::ready(const std::string& status) {
    last_status_ = status;
    send("READY=1\nSTATUS=" + status);
}

void ServiceNotifier::reloading() {
    // MONOTONIC_USEC: systemd 253 and later match it to the reload it asked for.
    std::string message = "RELOADING=1\nMONOTONIC_USEC=";
    message.append(std::to_string(monotonic_ns() / 1000));
    send(message);
}

void ServiceNotifier::status(const std::string& line, uint64_t now_ns) {
    if (!active_ || line == last_status_ || now_ns - last_sent_ns_ < 1000000000u) return;
    last_status_ = line;
    last_sent_ns_ = now_ns;
    send("STATUS=" + line);
}

void ServiceNotifier::stopping() {
    send("STOPPING=1");
}

}  // namespace nb::engine
