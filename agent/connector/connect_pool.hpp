// Runs connectors on worker threads so the event loop never blocks on DNS or a child
// process; completions come back through a queue whose readiness is an eventfd. Each
// connector's run time counts as BlockingKind::Connector (base/blocking.hpp), though
// the loop does not wait for it: how long wakes wait for their connectors.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

#include "agent/connector/connector.hpp"
#include "base/contended_mutex.hpp"

namespace nb {

class ConnectPool {
  public:
    struct Job {
        uint64_t job_id = 0;
        std::shared_ptr<Connector> connector;
        ConnectRequest req;  // req.stop is replaced by the pool's own stop token
    };
    struct Completion {
        uint64_t job_id = 0;
        ConnectResult result;
        std::chrono::steady_clock::duration elapsed{};  // time the connector ran
    };

    // Starts `threads` workers. When a job is submitted while every worker is busy,
    // another worker is started, up to `max_threads`: one slow or hung peer (a DNS
    // timeout, a stuck exec connector) never delays the others while fewer than
    // `max_threads` are stuck, and exec connectors are bounded by their timeout
    // anyway. Workers are not retired; the pool keeps its high-water mark.
    explicit ConnectPool(size_t threads = 4, size_t max_threads = 64);
    // Drops queued jobs, asks running connectors to stop (exec connectors kill their
    // command) and joins the workers; a connector blocked in DNS finishes first.
    ~ConnectPool();
    ConnectPool(const ConnectPool&) = delete;
    ConnectPool& operator=(const ConnectPool&) = delete;

    // Readable (level-triggered) while completions are waiting for drain().
    int event_fd() const { return event_fd_; }
    void submit(Job job);
    // Completions in the order they finished; clears the eventfd.
    std::vector<Completion> drain();
    size_t thread_count() const;
    // Workers, those running a connector now, and jobs waiting for one.
    struct Stats {
        size_t threads = 0, busy = 0, queued = 0;
    };
    Stats stats() const;

  private:
    void worker();
    void start_worker_locked();
    void stop_workers();

    const size_t max_threads_;
    int event_fd_ = -1;
    std::stop_source stop_;
    mutable ContendedMutex mu_{"connect pool queue"};
    std::condition_variable_any cv_;
    std::deque<Job> queue_;
    size_t idle_ = 0;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
    ContendedMutex done_mu_{"connect pool completions"};
    std::vector<Completion> done_;
};

}  // namespace nb
