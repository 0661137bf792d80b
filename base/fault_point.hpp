// Crash points for the fault-injection tests: the process kills itself (SIGKILL, no
// cleanup, as a crash or the OOM killer would) when NB_FAULT_POINT names the point it
// reaches. Lets a test stop the agent between two exact steps of a multi-step change,
// which no outside timing can hit reliably. Without the variable it is one string
// comparison against an empty name.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace nb {

inline void fault_point(const char* name) {
    static const char* const wanted = [] {
        const char* v = std::getenv("NB_FAULT_POINT");
        return v ? v : "";
    }();
    if (*wanted && std::strcmp(wanted, name) == 0) ::kill(::getpid(), SIGKILL);
}

}  // namespace nb
