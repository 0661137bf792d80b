// A named mutex that records its contended acquisitions (base/contended_mutex.hpp).
#include "base/contended_mutex.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <thread>

namespace nb {
namespace {

LockStats stats_of(const std::string& name) {
    for (auto& l : lock_snapshot())
        if (l.name == name) return l;
    ADD_FAILURE() << "no lock named " << name;
    return {};
}

TEST(ContendedMutex, ANewNameIsListedWithoutWaits) {
    ContendedMutex m("test never contended");
    { std::lock_guard lock(m); }
    LockStats s = stats_of("test never contended");
    EXPECT_EQ(s.waits.count, 0u);
    EXPECT_EQ(s.longest_wait_holder, "");
}

// One thread holds the lock while another asks for it. Whether the second got to ask
// before the first let go is up to the scheduler, so the round repeats until it did:
// with a broken record the count stays 0 however often.
TEST(ContendedMutex, AWaitForAHeldLockIsCountedWithItsHolder) {
    ContendedMutex m("test contended");
    for (int round = 0; round < 200 && stats_of("test contended").waits.count == 0; ++round) {
        std::atomic<bool> asking{false};
        m.lock();
        std::thread waiter([&] {
            asking = true;
            std::lock_guard lock(m);
        });
        while (!asking) std::this_thread::yield();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let it block
        m.unlock();
        waiter.join();
    }
    LockStats s = stats_of("test contended");
    EXPECT_GE(s.waits.count, 1u);
    EXPECT_GE(s.waits.sum_ns, s.waits.max_ns);
    // The holder was this test's m.lock(): an address in this executable.
    EXPECT_NE(s.longest_wait_holder.find(std::string(program_invocation_short_name) + "+0x"),
              std::string::npos)
        << s.longest_wait_holder;
    const std::string text = render_locks(lock_snapshot());
    EXPECT_NE(text.find("lock test contended: count="), std::string::npos) << text;
    EXPECT_NE(text.find(" holder="), std::string::npos) << text;
}

TEST(ContendedMutex, TryLockFailsWhileAnotherThreadHoldsIt) {
    ContendedMutex m("test try");
    m.lock();
    bool got = true;
    std::thread other([&] { got = m.try_lock(); });
    other.join();
    EXPECT_FALSE(got);
    m.unlock();
    std::thread again([&] {
        got = m.try_lock();
        if (got) m.unlock();
    });
    again.join();
    EXPECT_TRUE(got);
}

TEST(ContendedMutex, WorksWithConditionVariableAny) {
    ContendedMutex m("test condvar");
    std::condition_variable_any cv;
    bool ready = false;
    std::thread producer([&] {
        std::lock_guard lock(m);
        ready = true;
        cv.notify_all();
    });
    {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return ready; });
    }
    producer.join();
    EXPECT_TRUE(ready);
}

TEST(ContendedMutex, MutexesWithOneNameShareTheirEntry) {
    ContendedMutex a("test shared"), b("test shared");
    int entries = 0;
    for (const auto& l : lock_snapshot()) entries += l.name == "test shared";
    EXPECT_EQ(entries, 1);
}

TEST(ContendedMutex, DescribesACodeAddress) {
    EXPECT_EQ(describe_code_address(nullptr), "unknown");
    // A function libc exports (not an IFUNC, whose chosen variant is not exported): its
    // module and its symbol.
    const std::string where = describe_code_address(reinterpret_cast<const void*>(&::abort));
    EXPECT_NE(where.find("libc"), std::string::npos) << where;
    EXPECT_NE(where.find("(abort+0x0)"), std::string::npos) << where;
}

}  // namespace
}  // namespace nb
