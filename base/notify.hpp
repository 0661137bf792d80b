// Changing what a thread waits for on a condition variable: the change under the mutex,
// the wake-up after it, so no waiter misses it.
#pragma once

#include <mutex>

namespace nb {

// Any mutex with its condition variable: std::mutex with std::condition_variable, or a
// ContendedMutex (base/contended_mutex.hpp) with std::condition_variable_any.
template <typename Mutex, typename CondVar, typename Change>
void change_and_notify_all(Mutex& mu, CondVar& cv, Change&& change) {
    {
        std::lock_guard lock(mu);
        change();
    }
    cv.notify_all();
}

}  // namespace nb
