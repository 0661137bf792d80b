// Capturing another thread's stack: the thread is sent a real-time signal and records its
// own return addresses with backtrace() in the handler, as only a thread can walk its own
// stack. Used by thread_stacks(); one capture at a time, process-wide.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <vector>

namespace nb::debug {

// The signal the handler listens on: SIGRTMIN+3. glibc keeps the two below SIGRTMIN for
// itself; a real-time signal queues (a late one is not merged into the next request) and
// nothing else in the agent or its libraries uses this one. It must not be blocked in
// threads whose stacks should show (block_agent_signals() leaves it alone).
int stack_signal();

// Installs the handler (SA_RESTART, so most interrupted system calls resume) and loads
// what backtrace() loads on its first call (libgcc_s, with dlopen, which a signal handler
// must not do). Idempotent and thread-safe; call early, before threads start.
void install_thread_stack_handler();

struct StackCapture {
    enum class Outcome {
        Captured,  // frames holds the stack, innermost first
        NoAnswer,  // the thread did not run the handler in time (blocked signal, stopped)
        Gone,      // no such thread (it exited)
    };
    Outcome outcome = Outcome::NoAnswer;
    // Innermost first. Return addresses, except the first when first_is_pc: the
    // instruction a signalled thread was interrupted at (the signal frames above it are
    // dropped). The calling thread's own stack starts in capture_thread_stack().
    std::vector<void*> frames;
    bool first_is_pc = false;
};

// The stack of thread `tid` of this process, waiting at most `timeout` for it to answer.
// The calling thread's own tid is captured directly. Never hangs: a thread that answers
// after the timeout finds its request withdrawn and does nothing. Installs the handler if
// that was not done yet.
StackCapture capture_thread_stack(pid_t tid, std::chrono::milliseconds timeout);

}  // namespace nb::debug
