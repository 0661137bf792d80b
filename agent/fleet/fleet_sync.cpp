#include "agent/fleet/fleet_sync.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

namespace nb {

struct FleetSync::Impl {
    EtcdClient& client;
    EtcdOptions options;
    std::shared_ptr<NodeDirectory> dir;
    FleetSyncCallbacks cb;
    EtcdWatchTiming timing;
    std::atomic<uint64_t> ranges{0};
    std::atomic<bool> stopping{false};
    std::mutex mu;  // the watch, and the waits between retries
    std::condition_variable cv;
    std::unique_ptr<EtcdWatch> watch;
    std::mutex state_mu;
    StoreState reported = StoreState::Connecting;
    std::thread thread;

    void report(StoreState s, const std::string& detail) {
        std::lock_guard lock(state_mu);
        if (s == reported) return;
        reported = s;
        if (cb.state) cb.state(s, detail);
    }

    void deliver(const DirectoryChange& c) {
        if ((c.any() || !c.rejected.empty()) && cb.changed) cb.changed(c);
    }

    // One range read of every node, into the directory; returns its revision.
    int64_t read_all() {
        ++ranges;
        EtcdRangeResult r = client.range_prefix(dir->prefix());
        std::vector<StoreEntry> entries;
        entries.reserve(r.kvs.size());
        for (EtcdKeyValue& kv : r.kvs)
            entries.push_back({std::move(kv.key), std::move(kv.value), false});
        deliver(dir->replace(entries, r.revision));
        return r.revision;
    }

    // read_all until it succeeds, waiting between tries; 0 once stopping.
    int64_t read_all_until_up() {
        auto backoff = timing.backoff_min;
        while (!stopping) {
            try {
                int64_t rev = read_all();
                report(StoreState::Up, "range read of " + dir->prefix());
                return rev;
            } catch (const EtcdError& e) {
                report(StoreState::Down, e.what());
            }
            std::unique_lock lock(mu);
            cv.wait_for(lock, backoff, [&] { return stopping.load(); });
            backoff = std::min(backoff * 2, timing.backoff_max);
        }
        return 0;
    }

    void on_events(const std::vector<EtcdEvent>& events, int64_t revision) {
        std::vector<StoreEntry> entries;
        entries.reserve(events.size());
        for (const EtcdEvent& e : events)
            entries.push_back({e.kv.key, e.kv.value, e.type == EtcdEvent::Type::Delete});
        deliver(dir->apply(entries, revision));
    }

    void run() {
        int64_t rev = read_all_until_up();
        if (rev) start_watch(rev + 1);
    }

    void start_watch(int64_t from) {
        EtcdWatchCallbacks wc;
        wc.events = [this](const std::vector<EtcdEvent>& ev, int64_t r) { on_events(ev, r); };
        // Events between our revision and the compaction are gone: read everything again.
        wc.compacted = [this](int64_t) -> int64_t {
            int64_t r = read_all_until_up();
            return r ? r + 1 : 0;
        };
        wc.state = [this](bool connected, const std::string& detail) {
            report(connected ? StoreState::Up : StoreState::Down, detail);
        };
        const std::string& prefix = dir->prefix();
        std::lock_guard lock(mu);
        if (stopping) return;
        watch = std::make_unique<EtcdWatch>(
            options, EtcdWatchSpec{prefix, prefix_range_end(prefix), from}, std::move(wc), timing);
    }
};

FleetSync::FleetSync(EtcdClient& client, const EtcdOptions& options,
                     std::shared_ptr<NodeDirectory> directory, FleetSyncCallbacks callbacks,
                     EtcdWatchTiming timing)
    : impl_(new Impl{client, options, std::move(directory), std::move(callbacks), timing}) {
    impl_->thread = std::thread([this] { impl_->run(); });
}

FleetSync::~FleetSync() {
    stop();
}

void FleetSync::stop() {
    if (!impl_ || impl_->stopping.exchange(true)) return;
    {
        std::lock_guard lock(impl_->mu);
        impl_->cv.notify_all();
    }
    if (impl_->thread.joinable()) impl_->thread.join();
    std::unique_ptr<EtcdWatch> w;
    {
        std::lock_guard lock(impl_->mu);
        w = std::move(impl_->watch);
    }
    // Outside the lock: a compaction callback may be waiting for it.
    if (w) w->stop();
}

void FleetSync::restart_watch() {
    std::unique_ptr<EtcdWatch> old;
    {
        std::lock_guard lock(impl_->mu);
        if (impl_->stopping || !impl_->watch) return;  // none yet: the first is still to come
        old = std::move(impl_->watch);
        streams_before_ += old->streams();
    }
    old->stop();
    // Events up to the directory's revision were delivered: the new stream goes on after.
    impl_->start_watch(impl_->dir->revision() + 1);
}

uint64_t FleetSync::range_reads() const {
    return impl_->ranges;
}

uint64_t FleetSync::streams() const {
    std::lock_guard lock(impl_->mu);
    return streams_before_ + (impl_->watch ? impl_->watch->streams() : 0);
}

}  // namespace nb
