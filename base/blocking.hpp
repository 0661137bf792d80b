// Where the event loop waits: time spent in calls that can block it, per kind of call,
// in one process-wide registry (for `nbagent debug bundle`).
//
//   { BlockingTimer t(BlockingKind::WgUapi); ...connect, send, poll... }
//
// Only the event loop's waits count: threads that exist to wait so the loop does not
// (the connector pool's workers, the device reader, WireGuard's health probe) call
// mark_thread_off_loop() once, and their BlockingTimers record nothing. record_blocking
// counts on any thread; the connector pool uses it for its connectors' run time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/latency_histogram.hpp"

namespace nb {

enum class BlockingKind {
    WgUapi,         // a request to wireguard-go's UAPI socket, connect to its reply
    WgNetlink,      // a generic netlink request to kernel WireGuard, send to ack or dump end
    Rtnetlink,      // an rtnetlink request (links, addresses, routes, tc), send to ack
    Connector,      // a connector's run, on a pool thread: the loop never waits for it
    Dns,            // getaddrinfo for an endpoint host name
    ControlClient,  // send() of a reply or trace event to a control client
    StateFile,      // writing the state file: open, write, fsync, rename
};
inline constexpr size_t kBlockingKinds = 7;

// "wg-uapi", "wg-netlink", "rtnetlink", "connector", "dns", "control-client", "state-file".
const char* to_string(BlockingKind kind);

// Counts a wait of `ns` for `kind`, whichever thread calls.
void record_blocking(BlockingKind kind, uint64_t ns);

// This thread's waits do not hold up the event loop: BlockingTimers on it record nothing.
void mark_thread_off_loop();
bool thread_is_off_loop();

// Times its scope (CLOCK_MONOTONIC) and records it, unless the thread is off the loop.
class BlockingTimer {
  public:
    explicit BlockingTimer(BlockingKind kind);
    ~BlockingTimer();
    BlockingTimer(const BlockingTimer&) = delete;
    BlockingTimer& operator=(const BlockingTimer&) = delete;

  private:
    BlockingKind kind_;
    uint64_t start_ns_;  // 0: not timed (off the loop)
};

// One kind's waits: count, total (sum_ns), max and their spread, since the process began.
struct BlockingStats {
    BlockingKind kind;
    HistogramSnapshot waits;
};

// Every kind, in the enum's order, those without waits too.
std::vector<BlockingStats> blocking_snapshot();

// A line per kind, as render_histogram writes it, named "blocking <kind>".
std::string render_blocking(const std::vector<BlockingStats>& stats);

}  // namespace nb
