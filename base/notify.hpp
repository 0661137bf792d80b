// Changing what a thread waits for on a condition variable: the change under the mutex,
// the wake-up after it, so no waiter misses it.
#pragma once

#include <condition_variable>
#include <mutex>

namespace nb {

template <typename Change>
void change_and_notify_all(std::mutex& mu, std::condition_variable& cv, Change&& change) {
    {
        std::lock_guard lock(mu);
        change();
    }
    cv.notify_all();
}

}  // namespace nb
