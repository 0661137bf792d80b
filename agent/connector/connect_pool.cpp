#include "agent/connector/connect_pool.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include "base/blocking.hpp"
#include "base/notify.hpp"

namespace nb {

ConnectPool::ConnectPool(size_t threads, size_t max_threads) : max_threads_(max_threads) {
    if (threads == 0 || max_threads < threads) {
        throw std::invalid_argument("ConnectPool needs 1 <= threads <= max_threads, got " +
                                    std::to_string(threads) + " and " +
                                    std::to_string(max_threads));
    }
    event_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (event_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    try {
        std::lock_guard lock(mu_);
        for (size_t i = 0; i < threads; ++i) start_worker_locked();
    } catch (...) {
        stop_workers();
        throw;
    }
}

ConnectPool::~ConnectPool() {
    stop_workers();
}

void ConnectPool::stop_workers() {
    change_and_notify_all(mu_, cv_, [this] {
        stopping_ = true;
        queue_.clear();
    });
    stop_.request_stop();  // running jobs' connectors watch its token
    for (auto& t : threads_) t.join();
    ::close(event_fd_);
    event_fd_ = -1;
}

// A new worker counts as idle from the start, so submit() does not start another one
// for the same job before this one got to run.
void ConnectPool::start_worker_locked() {
    threads_.emplace_back([this] { worker(); });
    ++idle_;
}

size_t ConnectPool::thread_count() const {
    std::lock_guard lock(mu_);
    return threads_.size();
}

ConnectPool::Stats ConnectPool::stats() const {
    std::lock_guard lock(mu_);
    return {threads_.size(), threads_.size() - std::min(idle_, threads_.size()), queue_.size()};
}

void ConnectPool::submit(Job job) {
    if (!job.connector) throw std::invalid_argument("ConnectPool job without a connector");
    job.req.stop = stop_.get_token();
    {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(job));
        // Idle workers not yet woken are already spoken for by earlier jobs.
        if (idle_ < queue_.size() && threads_.size() < max_threads_) start_worker_locked();
    }
    cv_.notify_one();
}

void ConnectPool::worker() {
    mark_thread_off_loop();  // a connector's DNS and child process do not stop the loop
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (stopping_) return;
        Job job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();

        const auto start = std::chrono::steady_clock::now();
        ConnectResult result;
        try {
            result = job.connector->connect(job.req);
        } catch (const std::exception& e) {
            result = {std::nullopt, job.connector->name() + " connector failed: " + e.what()};
        }
        if (!result.endpoint && result.error.empty()) {
            result.error = job.connector->name() + " connector returned no endpoint";
        }
        Completion c{job.job_id, std::move(result), std::chrono::steady_clock::now() - start};
        record_blocking(
            BlockingKind::Connector,
            static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(c.elapsed).count()));
        {
            // Queue and signal change together (drain clears both under the same lock):
            // the eventfd is readable exactly while completions wait.
            std::lock_guard done_lock(done_mu_);
            done_.push_back(std::move(c));
            uint64_t one = 1;
            // Cannot fail short of the counter overflowing 2^64-1, which needs that many
            // undrained completions.
            [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
        }
        lock.lock();
        ++idle_;
    }
}

std::vector<ConnectPool::Completion> ConnectPool::drain() {
    std::vector<Completion> out;
    std::lock_guard lock(done_mu_);
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(event_fd_, &count, sizeof count);
    out.swap(done_);
    return out;
}

}  // namespace nb
