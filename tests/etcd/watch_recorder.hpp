// Records what an EtcdWatch's callbacks report, for a test thread to wait on.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "agent/etcd/etcd_watch.hpp"

namespace nb {

// What a watch's callbacks saw, for the test thread to wait on.
struct WatchRecorder {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<EtcdEvent> events;
    std::vector<int64_t> revisions;
    std::vector<std::pair<bool, std::string>> states;
    std::vector<int64_t> compactions;
    // What the compacted callback returns (the revision to go on from); unset: 0.
    std::function<int64_t(int64_t)> on_compacted;

    EtcdWatchCallbacks callbacks() {
        return {[this](const std::vector<EtcdEvent>& ev, int64_t rev) {
                    std::lock_guard lk(mu);
                    events.insert(events.end(), ev.begin(), ev.end());
                    revisions.push_back(rev);
                    cv.notify_all();
                },
                [this](int64_t compact_revision) {
                    int64_t from = on_compacted ? on_compacted(compact_revision) : 0;
                    std::lock_guard lk(mu);
                    compactions.push_back(compact_revision);
                    cv.notify_all();
                    return from;
                },
                [this](bool up, const std::string& detail) {
                    std::lock_guard lk(mu);
                    states.emplace_back(up, detail);
                    cv.notify_all();
                }};
    }
    // Waits until `pred` (called under mu) holds: woken by the callbacks, and looking
    // again now and then for what no callback reports. 60 s bound a hung test; no speed
    // is checked.
    template <class P>
    bool wait(P pred) {
        std::unique_lock lk(mu);
        for (int i = 0; i < 3000; ++i) {
            if (pred()) return true;
            cv.wait_for(lk, std::chrono::milliseconds(20));
        }
        return pred();
    }
};

}  // namespace nb
