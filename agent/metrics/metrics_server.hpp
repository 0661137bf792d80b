// /metrics over HTTP (cpp-httplib, Debian's libcpp-httplib) on threads of its own. A
// scrape asks the event loop for a fresh snapshot through an eventfd and waits for it a
// short while; a loop busy longer (applying a big map) gets the last snapshot, whose age
// the scrape shows. The loop's part is O(1), whatever the number of peers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "agent/metrics/metrics_snapshot.hpp"

namespace nb {

struct ListenAddress {
    std::string host;  // an IPv4 or IPv6 address, without brackets
    uint16_t port = 0;
    std::string text() const;  // "127.0.0.1:9590", "[::1]:9590"
};

// "ADDR:PORT" or "[ADDR6]:PORT" with a numeric address; port 0 takes any free one.
// Throws std::invalid_argument naming what is wrong.
ListenAddress parse_listen_address(const std::string& s);

class MetricsServer {
  public:
    // Listens at once; throws std::runtime_error naming the address when it cannot.
    explicit MetricsServer(const ListenAddress& at,
                           std::chrono::milliseconds wait = std::chrono::milliseconds(500));
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // The loop: readable while a scrape waits; answer() gives it the snapshot.
    int event_fd() const;
    void answer(MetricsSnapshot s);
    // Where it listens (the port chosen, when 0 was asked).
    ListenAddress address() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nb
