#include "agent/wg/device_reader.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <system_error>

#include "base/blocking.hpp"

namespace nb {

DeviceReader::DeviceReader(Factory open)
    : open_(std::move(open)), efd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (efd_.get() < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    thread_ = std::thread([this] { run(); });
}

DeviceReader::~DeviceReader() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

bool DeviceReader::start() {
    {
        std::lock_guard lock(mu_);
        if (busy_) return false;
        busy_ = requested_ = true;
    }
    cv_.notify_one();
    return true;
}

std::optional<DeviceRead> DeviceReader::take() {
    uint64_t count = 0;
    [[maybe_unused]] ssize_t n = ::read(efd_.get(), &count, sizeof count);
    std::lock_guard lock(mu_);
    if (!result_) return std::nullopt;
    std::optional<DeviceRead> out = std::move(result_);
    result_.reset();
    busy_ = false;
    return out;
}

void DeviceReader::run() {
    mark_thread_off_loop();  // its dumps are the ones the loop does not wait for
    std::unique_ptr<WgControl> wg;
    for (;;) {
        {
            std::unique_lock lock(mu_);
            cv_.wait(lock, [this] { return stop_ || requested_; });
            if (stop_) return;
            requested_ = false;
        }
        DeviceRead r;
        auto start = std::chrono::steady_clock::now();
        try {
            if (!wg) wg = open_();
            r.device = wg->get_device();
        } catch (const std::exception& e) {
            r.error = e.what();
            wg.reset();  // a fresh connection next time
        }
        r.took_ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::steady_clock::now() - start)
                                              .count());
        {
            std::lock_guard lock(mu_);
            result_ = std::move(r);
        }
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(efd_.get(), &one, sizeof one);
    }
}

}  // namespace nb
