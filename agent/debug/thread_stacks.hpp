// Every thread's stack as text, the C++ counterpart of Go's goroutine dump, for
// `nbagent debug bundle`. Each thread records its own stack in a signal handler (see
// stack_capture.hpp); the calling thread records its own directly.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "agent/debug/stack_capture.hpp"

namespace nb::debug {

// One block per thread of /proc/self/task, in tid order:
//   thread 1234 "nbagent" (state S, wchan do_epoll_wait)
//     #0 0x00007f0e2c8e1d56 epoll_wait + 0x56 [libc.so.6+0x10dd56]
//     #1 0x000055d0c1a2b3c4 nb::engine::Agent::loop() + 0x1a4 [nbagent+0x8b3c4]
// A thread that does not answer within per_thread_timeout (also one that blocks the signal that
// long) or is a zombie gets a line saying so instead of frames; the call never hangs. Names need
// the executable's symbols in its dynamic table (-rdynamic, ENABLE_EXPORTS); a frame without one
// shows ?? and its module offset, for addr2line. Safe from any thread, concurrently with itself
// (captures are serialized); not from a signal handler.
std::string thread_stacks(
    std::chrono::milliseconds per_thread_timeout = std::chrono::milliseconds(200));

// Parsers of /proc/self/task/<tid> files, exposed for tests.
// The state letter of a stat line (R, S, D, T, Z, ...), or '?'. The name in parentheses
// may itself hold spaces and parentheses, so the state follows the last ')'.
char task_state_from_stat(std::string_view stat);
// Whether the SigBlk mask of a status text has signal `sig` set.
bool signal_blocked_in_status(std::string_view status, int sig);

}  // namespace nb::debug
