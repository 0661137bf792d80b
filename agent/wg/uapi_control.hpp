// WireGuard control over wireguard-go's UAPI socket (the cross-platform userspace
// protocol: "get=1" / "set=1" text transactions, keys in hex, replies end in "errno=N").
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/wg/wg_control.hpp"

namespace nb {

class UapiExchange;

class UapiControl : public WgControl {
  public:
    explicit UapiControl(std::string interface, std::string socket_dir = "/var/run/wireguard");

    WgBackend backend() const override { return WgBackend::Userspace; }
    // Throws WgError on a socket failure, a malformed reply or a nonzero errno.
    WgDevice get_device() override;
    // Sent as several set=1 transactions when large (see set_max_peers_per_request), so
    // a failure part-way leaves the earlier transactions applied; the error says which.
    void set_device(const DeviceUpdate& update) override;

    const std::string& socket_path() const { return path_; }
    // Bounds every wait for the daemon (connect, each write, each read); default 10 s.
    void set_timeout(std::chrono::milliseconds timeout) { timeout_ = timeout; }
    // Peers per set=1 transaction (at least 1); default 2000.
    void set_max_peers_per_request(std::size_t n) { max_peers_ = n == 0 ? 1 : n; }
    // Who takes a transaction that timed out (WgError with WgFault::NoAnswer) instead of
    // it being closed: wireguard-go may still apply it (see UapiExchange).
    using Parking = std::function<void(std::unique_ptr<UapiExchange>)>;
    void set_parking(Parking parking) { parking_ = std::move(parking); }

  private:
    // One connection, one transaction: sends `request`, returns the reply up to and
    // including the blank line that ends it.
    std::string transact(std::string_view request) const;

    std::string interface_;
    std::string path_;
    std::chrono::milliseconds timeout_{10000};
    std::size_t max_peers_ = 2000;
    Parking parking_;
};

// The protocol without the socket, exposed for tests and for diagnostics.
// Parses a complete get=1 reply (ending in "errno=0\n\n"); throws WgError naming the
// offending line.
WgDevice parse_uapi_get_reply(std::string_view reply);
// Splits an update into set=1 requests of at most `max_peers` peers each (a peer with
// very many allowed IPs continues in the next request). Every request ends in "\n\n".
std::vector<std::string> build_uapi_set_requests(const DeviceUpdate& update, std::size_t max_peers);

}  // namespace nb
