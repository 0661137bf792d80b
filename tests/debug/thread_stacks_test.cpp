// thread_stacks() and capture_thread_stack() on threads of this test process: a thread
// parked in a named function, one that blocks the signal, concurrent dumps.
#include "agent/debug/thread_stacks.hpp"

#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>

namespace nb::debug_test {

// A thread parked in a read() of a pipe until a byte arrives: in a system call, as the
// agent's threads mostly are. Keeps its own frame (noinline, work after the call).
struct Parked {
    int fds[2] = {-1, -1};
    std::atomic<pid_t> tid{0};
    std::atomic<ssize_t> result{0};
    std::atomic<int> error{0};
};

[[gnu::noinline]] ssize_t park_in_read(Parked& p) {
    char byte = 0;
    p.tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    const ssize_t n = ::read(p.fds[0], &byte, 1);
    p.error.store(n < 0 ? errno : 0);
    return n < 0 ? n : byte;
}

class ParkedThread {
  public:
    explicit ParkedThread(const char* name, bool block_signal = false) {
        EXPECT_EQ(::pipe(p_.fds), 0);
        thread_ = std::thread([this, name, block_signal] {
            ::pthread_setname_np(::pthread_self(), name);
            if (block_signal) {
                sigset_t s;
                sigemptyset(&s);
                sigaddset(&s, debug::stack_signal());
                ::pthread_sigmask(SIG_BLOCK, &s, nullptr);
            }
            p_.result.store(park_in_read(p_));
            if (block_signal) {
                sigset_t s;
                sigemptyset(&s);
                sigaddset(&s, debug::stack_signal());
                ::pthread_sigmask(SIG_UNBLOCK, &s, nullptr);  // a late signal arrives now
            }
        });
        while (p_.tid.load() == 0) std::this_thread::yield();
    }
    ~ParkedThread() {
        release();
        ::close(p_.fds[0]);
        ::close(p_.fds[1]);
    }
    // Lets the read return the byte 'x'; returns what it returned.
    ssize_t release() {
        if (thread_.joinable()) {
            const char x = 'x';
            EXPECT_EQ(::write(p_.fds[1], &x, 1), 1);
            thread_.join();
        }
        return p_.result.load();
    }
    pid_t tid() const { return p_.tid.load(); }
    int read_errno() const { return p_.error.load(); }

  private:
    Parked p_;
    std::thread thread_;
};

TEST(ThreadStacks, ShowsAParkedThreadInItsNamedFunction) {
    ParkedThread parked("parked-reader");
    const std::string dump = debug::thread_stacks();
    const std::string head = "thread " + std::to_string(parked.tid()) + " \"parked-reader\"";
    const size_t at = dump.find(head);
    ASSERT_NE(at, std::string::npos) << dump;
    const std::string block = dump.substr(at, dump.find("\nthread ", at + 1) - at);
    EXPECT_NE(block.find("#0 "), std::string::npos) << block;
    EXPECT_NE(block.find("nb::debug_test::park_in_read(nb::debug_test::Parked&) + 0x"),
              std::string::npos)
        << block;
    // SA_RESTART: the interrupted read went on and got the byte, not EINTR.
    EXPECT_EQ(parked.release(), 'x');
    EXPECT_EQ(parked.read_errno(), 0);
}

TEST(ThreadStacks, ShowsTheCallingThreadAndTheMainThread) {
    const std::string dump = debug::thread_stacks();
    const auto self = static_cast<pid_t>(::syscall(SYS_gettid));
    EXPECT_NE(dump.find("thread " + std::to_string(self) + " "), std::string::npos) << dump;
    EXPECT_NE(dump.find("this thread, writing the dump"), std::string::npos) << dump;
    EXPECT_NE(dump.find("nb::debug::thread_stacks"), std::string::npos) << dump;
    EXPECT_NE(dump.find(" threads in process " + std::to_string(::getpid())), std::string::npos);
}

TEST(ThreadStacks, SaysWhenAThreadBlocksTheSignal) {
    ParkedThread parked("blocker", /*block_signal=*/true);
    const std::string dump = debug::thread_stacks();
    const size_t at = dump.find("thread " + std::to_string(parked.tid()) + " \"blocker\"");
    ASSERT_NE(at, std::string::npos) << dump;
    EXPECT_NE(dump.find("blocks SIGRTMIN+3: stack not taken", at), std::string::npos) << dump;
}

// A thread that cannot answer in time is reported, and its late answer (once it
// unblocks the signal) neither lands in nor disturbs the next capture.
TEST(StackCapture, AThreadThatDoesNotAnswerTimesOutAndALateAnswerIsHarmless) {
    ParkedThread other("other");
    {
        ParkedThread blocker("late", /*block_signal=*/true);
        const auto c = debug::capture_thread_stack(blocker.tid(), std::chrono::milliseconds(50));
        EXPECT_EQ(c.outcome, debug::StackCapture::Outcome::NoAnswer);
        EXPECT_TRUE(c.frames.empty());
        EXPECT_EQ(blocker.release(), 'x');  // unblocks: the pending signal is handled now
    }
    const auto c = debug::capture_thread_stack(other.tid(), std::chrono::seconds(10));
    ASSERT_EQ(c.outcome, debug::StackCapture::Outcome::Captured);
    EXPECT_TRUE(c.first_is_pc);
    EXPECT_FALSE(c.frames.empty());
}

TEST(StackCapture, AThreadThatExitedIsGone) {
    pid_t tid = 0;
    std::thread([&tid] { tid = static_cast<pid_t>(::syscall(SYS_gettid)); }).join();
    // join() returns when the thread is done with its stack, maybe before the kernel has
    // released the task; then it is gone from /proc. No thread starts meanwhile here, so
    // its tid is not reused.
    const std::string task = "/proc/self/task/" + std::to_string(tid);
    while (::access(task.c_str(), F_OK) == 0) std::this_thread::yield();
    const auto c = debug::capture_thread_stack(tid, std::chrono::milliseconds(50));
    EXPECT_EQ(c.outcome, debug::StackCapture::Outcome::Gone);
}

TEST(ThreadStacks, ConcurrentDumpsEachSeeEveryThread) {
    ParkedThread parked("parked-reader");
    auto dump = [] { return debug::thread_stacks(std::chrono::seconds(10)); };
    std::vector<std::future<std::string>> dumps;
    for (int i = 0; i < 4; ++i) dumps.push_back(std::async(std::launch::async, dump));
    for (auto& d : dumps) {
        const std::string text = d.get();
        EXPECT_NE(text.find("park_in_read"), std::string::npos) << text;
        EXPECT_EQ(text.find("no answer"), std::string::npos) << text;
    }
}

TEST(ThreadStackParsers, StateFollowsTheLastParenthesis) {
    EXPECT_EQ(debug::task_state_from_stat("1234 (nbagent) S 1 1234 1234 0 -1"), 'S');
    EXPECT_EQ(debug::task_state_from_stat("1234 (a) b (c)) D 1 2"), 'D');
    EXPECT_EQ(debug::task_state_from_stat("garbage"), '?');
    EXPECT_EQ(debug::task_state_from_stat("1 (x)"), '?');
}

TEST(ThreadStackParsers, SigBlkBits) {
    const std::string status =
        "Name:\tx\nSigQ:\t0/63\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n"
        "SigBlk:\t0000001000004003\nSigIgn:\t0000000000001000\n";
    EXPECT_TRUE(debug::signal_blocked_in_status(status, 1));    // SIGHUP
    EXPECT_TRUE(debug::signal_blocked_in_status(status, 2));    // SIGINT
    EXPECT_TRUE(debug::signal_blocked_in_status(status, 15));   // SIGTERM
    EXPECT_TRUE(debug::signal_blocked_in_status(status, 37));   // SIGRTMIN+3
    EXPECT_FALSE(debug::signal_blocked_in_status(status, 13));  // only ignored
    EXPECT_FALSE(debug::signal_blocked_in_status(status, 27));  // SIGPROF
    EXPECT_FALSE(debug::signal_blocked_in_status("Name:\tx\n", 2));
}

}  // namespace nb::debug_test
