#include "agent/debug/stack_capture.hpp"

#include <execinfo.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <ctime>
#include <mutex>
#include <system_error>

namespace nb::debug {
namespace {

constexpr int kMaxFrames = 64;
constexpr int kHandlerFrames = 4;  // the handler, the signal trampoline, sanitizer shims

// One request at a time. `state` is the handshake: a tid (> 0) arms the slot for that
// thread, whose handler claims it (kCapturing), fills it and publishes it (kDone); the
// requester withdraws an unanswered request by swapping the tid back to kIdle, so a late
// handler finds nothing to do. Only the targeted thread can claim, in one atomic step.
constexpr int kIdle = 0, kCapturing = -1, kDone = -2;

struct Slot {
    std::atomic<int> state{kIdle};
    void* pc = nullptr;
    int depth = 0;
    void* frames[kMaxFrames + kHandlerFrames];
};
static_assert(std::atomic<int>::is_always_lock_free && sizeof(std::atomic<int>) == sizeof(int),
              "the slot state doubles as a futex word");

// A slot whose handler never finished is left to it (leaked) and replaced, so a handler
// always writes to live memory; that happens only if a thread stalls inside the handler.
std::atomic<Slot*> g_slot{new Slot};
std::mutex g_capture_mutex;

int* futex_word(Slot& s) {
    return reinterpret_cast<int*>(&s.state);
}

void* interrupted_pc(const void* context) {
    const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
    return reinterpret_cast<void*>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
    return reinterpret_cast<void*>(uc->uc_mcontext.pc);
#else
    (void)uc;
    return nullptr;
#endif
}

// Async-signal-safe only: atomics, backtrace() (its one-time setup is done at install),
// and system calls. errno is the interrupted code's, so it is put back.
void on_stack_signal(int, siginfo_t*, void* context) {
    const int saved_errno = errno;
    Slot* slot = g_slot.load(std::memory_order_acquire);
    int armed_for_me = static_cast<int>(::syscall(SYS_gettid));
    if (slot->state.compare_exchange_strong(armed_for_me, kCapturing, std::memory_order_acquire)) {
        slot->pc = interrupted_pc(context);
        slot->depth = ::backtrace(slot->frames, kMaxFrames + kHandlerFrames);
        slot->state.store(kDone, std::memory_order_release);
        ::syscall(SYS_futex, futex_word(*slot), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
    }
    errno = saved_errno;
}

// Waits until the slot is kDone or the deadline passes; returns the state last seen.
int await_done(Slot& slot, std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        const int s = slot.state.load(std::memory_order_acquire);
        if (s == kDone) return s;
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= left.zero()) return s;
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        const timespec ts{static_cast<time_t>(ns / 1'000'000'000),
                          static_cast<long>(ns % 1'000'000'000)};
        ::syscall(SYS_futex, futex_word(slot), FUTEX_WAIT_PRIVATE, s, &ts, nullptr, 0);
    }
}

// The frames from the interrupted instruction on, without the handler's own.
StackCapture take_frames(const Slot& slot) {
    StackCapture c{StackCapture::Outcome::Captured, {}, false};
    int first = 0;
    for (int i = 0; i < slot.depth && slot.pc; ++i) {
        if (slot.frames[i] == slot.pc) {
            first = i;
            c.first_is_pc = true;
            break;
        }
    }
    c.frames.assign(slot.frames + first, slot.frames + slot.depth);
    return c;
}

[[gnu::noinline]] StackCapture capture_self() {
    void* frames[kMaxFrames + 1];
    const int depth = ::backtrace(frames, kMaxFrames + 1);
    StackCapture c{StackCapture::Outcome::Captured, {}, false};
    if (depth > 1) c.frames.assign(frames + 1, frames + depth);  // without this function
    return c;
}

StackCapture capture_other(pid_t tid, std::chrono::milliseconds timeout) {
    Slot& slot = *g_slot.load(std::memory_order_relaxed);
    slot.depth = 0;
    slot.state.store(tid, std::memory_order_release);
    const bool sent = ::syscall(SYS_tgkill, ::getpid(), tid, stack_signal()) == 0;
    const int send_errno = errno;
    auto deadline = std::chrono::steady_clock::now() + (sent ? timeout : timeout.zero());
    int s = await_done(slot, deadline);
    int armed = tid;
    if (s != kDone && slot.state.compare_exchange_strong(armed, kIdle)) {
        const bool gone = !sent && send_errno == ESRCH;
        return {gone ? StackCapture::Outcome::Gone : StackCapture::Outcome::NoAnswer, {}, false};
    }
    // Claimed by the handler: it gets one more timeout to finish.
    if (await_done(slot, std::chrono::steady_clock::now() + timeout) != kDone) {
        g_slot.store(new Slot, std::memory_order_release);
        return {StackCapture::Outcome::NoAnswer, {}, false};
    }
    StackCapture c = take_frames(slot);
    slot.state.store(kIdle, std::memory_order_relaxed);
    return c;
}

}  // namespace

int stack_signal() {
    return SIGRTMIN + 3;
}

void install_thread_stack_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        void* preload[2];
        ::backtrace(preload, 2);
        struct sigaction sa {};
        sa.sa_sigaction = on_stack_signal;
        sa.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&sa.sa_mask);
        // The CPU profiler's SIGPROF handler walks the stack too: not inside this one.
        sigaddset(&sa.sa_mask, SIGPROF);
        if (::sigaction(stack_signal(), &sa, nullptr) != 0)
            throw std::system_error(errno, std::generic_category(), "sigaction");
    });
}

StackCapture capture_thread_stack(pid_t tid, std::chrono::milliseconds timeout) {
    install_thread_stack_handler();
    std::lock_guard lock(g_capture_mutex);
    if (tid == static_cast<pid_t>(::syscall(SYS_gettid))) return capture_self();
    return capture_other(tid, timeout);
}

}  // namespace nb::debug
