// Runs a test body in a fresh, unnamed network namespace: on a thread of its own that
// unshares, so the namespace and all in it go away when the thread ends.
#pragma once

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace nb::test {

// `lo_up`: bring loopback up first (it starts down in a new namespace).
inline void in_fresh_netns(const std::function<void()>& body, bool lo_up = false) {
    std::string err;
    std::thread t([&] {
        if (::unshare(CLONE_NEWNET) != 0) {
            err = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
            return;
        }
        if (lo_up && std::system("ip link set lo up") != 0) {
            err = "ip link set lo up failed";
            return;
        }
        body();
    });
    t.join();
    ASSERT_TRUE(err.empty()) << err;
}

}  // namespace nb::test
