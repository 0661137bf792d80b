// Keeps a NodeDirectory equal to the store: one range read of the mesh's nodes, then a
// watch from the revision after it. The watch resumes at the next member from the last
// revision it delivered, so a member going down costs nothing and the store coming back
// costs one new stream, not a re-read; only a compacted revision costs another range.
// Callbacks run on the sync's threads, one at a time, and must not throw.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "agent/etcd/etcd_client.hpp"
#include "agent/etcd/etcd_watch.hpp"
#include "agent/fleet/node_directory.hpp"
#include "agent/fleet/store_state.hpp"

namespace nb {

struct FleetSyncCallbacks {
    std::function<void(const DirectoryChange& change)> changed;
    // Up once a range was read or a stream is open; Down once every member failed in a
    // row (`detail` names them). Only changes are reported.
    std::function<void(StoreState state, const std::string& detail)> state;
};

class FleetSync {
  public:
    // Starts at once: the range read (retried with backoff while the store is down),
    // then the watch. `client` serves the range reads and must outlive this.
    FleetSync(EtcdClient& client, const EtcdOptions& options,
              std::shared_ptr<NodeDirectory> directory, FleetSyncCallbacks callbacks,
              EtcdWatchTiming timing = {});
    ~FleetSync();  // stop()
    FleetSync(const FleetSync&) = delete;
    FleetSync& operator=(const FleetSync&) = delete;

    void stop();
    // A new stream from the directory's revision, dropping the one open now: this host's
    // address changed, and a stream bound to the old one would wait out its idle timeout
    // before it noticed that nothing arrives. Blocks until the old stream is closed.
    void restart_watch();
    // Range reads and watch streams made so far: what a re-sync costs.
    uint64_t range_reads() const;
    uint64_t streams() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    uint64_t streams_before_ = 0;  // of watches restart_watch replaced (under Impl's mu)
};

}  // namespace nb
