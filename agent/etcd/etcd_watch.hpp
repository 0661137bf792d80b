// A watch on a key or a prefix, on a thread of its own, over the gateway's /v3/watch
// stream (one JSON response per line). It hands batches of events to a callback, and when
// the stream ends or fails it opens a new one at the next member, from the revision after
// the last it delivered, so no event is lost or repeated. It reports when it has a stream
// and when every member failed (the owner shows the store degraded), and when the revision
// it asked for is compacted away (the owner re-reads with a range). Callbacks run on the
// watch's thread, one at a time, and must not throw.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/etcd/etcd_options.hpp"
#include "agent/etcd/etcd_types.hpp"

namespace nb {

struct EtcdWatchSpec {
    std::string key;
    std::string range_end;       // empty: `key` alone; prefix_range_end(key): the prefix
    int64_t start_revision = 0;  // 0: changes after the store's revision at the start
};

struct EtcdWatchCallbacks {
    // Events in revision order; `revision` is the last one's (the next stream starts after).
    std::function<void(const std::vector<EtcdEvent>& events, int64_t revision)> events;
    // The start revision was compacted: etcd no longer has the events from it up to
    // `compact_revision`. Returns the revision to watch from (the owner's range read at R
    // gives R + 1); 0 ends the watch. Unset: resumes at compact_revision (events lost).
    std::function<int64_t(int64_t compact_revision)> compacted;
    // connected: a stream is open (`detail`: the member); not connected: every member
    // failed in a row (`detail` names each and why). Only changes are reported, the first
    // report being whichever comes first.
    std::function<void(bool connected, const std::string& detail)> state;
};

struct EtcdWatchTiming {
    // Waits after a round in which every member failed: doubling from min to max.
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    // A stream silent this long is dropped and opened again (a member gone without a
    // word). The watch asks for progress notifications, which etcd sends to an idle
    // watch every 10 minutes by default (--experimental-watch-progress-notify-interval).
    std::chrono::milliseconds idle_timeout{std::chrono::minutes(15)};
};

class EtcdWatch {
  public:
    // Starts the thread. Throws std::invalid_argument for bad options or no key.
    EtcdWatch(const EtcdOptions& options, EtcdWatchSpec spec, EtcdWatchCallbacks callbacks,
              EtcdWatchTiming timing = {});
    // stop()
    ~EtcdWatch();
    EtcdWatch(const EtcdWatch&) = delete;
    EtcdWatch& operator=(const EtcdWatch&) = delete;

    // Ends the stream and the thread; returns once no callback runs any more. Not from a
    // callback.
    void stop();
    // Streams opened (or tried), every member counted.
    uint64_t streams() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nb
