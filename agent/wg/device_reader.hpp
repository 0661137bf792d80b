// Reads WireGuard's whole device on a thread of its own, so the event loop goes on
// while it runs.
//
// A dump costs in proportion to every peer: 100,000 kernel WireGuard peers take seconds
// under emulation, and the loop that waited for it could not start the wake of a real
// peer meanwhile. Kernel WireGuard answers a dump in chunks, each under its own lock,
// so a request on another socket (the loop's) goes in between two chunks.
//
// Not for wireguard-go: its dump holds the device's configuration lock until the last
// byte is written (65,000 peers: 0.3-0.8 s), so the loop's next request would wait
// that long anyway, and then against its short call timeout.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "agent/wg/wg_control.hpp"
#include "base/contended_mutex.hpp"
#include "base/unique_fd.hpp"

namespace nb {

struct DeviceRead {
    std::optional<WgDevice> device;  // none: the read failed, `error` says why
    std::string error;
    uint64_t took_ns = 0;
};

class DeviceReader {
  public:
    using Factory = std::function<std::unique_ptr<WgControl>()>;
    // `open` makes the reader's own connection, on the reader's thread.
    explicit DeviceReader(Factory open);
    ~DeviceReader();
    DeviceReader(const DeviceReader&) = delete;
    DeviceReader& operator=(const DeviceReader&) = delete;

    // Starts a read. False while one is still running or its result is not taken yet.
    bool start();
    // Readable once a read has finished; take() then returns its result.
    int event_fd() const { return efd_.get(); }
    std::optional<DeviceRead> take();

  private:
    void run();

    Factory open_;
    UniqueFd efd_;
    ContendedMutex mu_{"device reader"};
    std::condition_variable_any cv_;
    bool requested_ = false;
    bool busy_ = false;  // requested, running, or finished and not taken
    bool stop_ = false;
    std::optional<DeviceRead> result_;
    std::thread thread_;  // last: it starts once the rest is there
};

}  // namespace nb
