// Tests that need root, BPF or network namespaces call NB_REQUIRE_PRIVILEGED(). On a
// machine without them they skip with the reason printed; where CI=true or
// NB_REQUIRE_PRIVILEGED=1 is set (as .ci/run does) the same condition fails instead.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace nb::test {

inline bool skips_are_failures() {
    const char* ci = std::getenv("CI");
    const char* req = std::getenv("NB_REQUIRE_PRIVILEGED");
    return (ci && std::string(ci) == "true") || (req && std::string(req) == "1");
}

}  // namespace nb::test

// `reason` is empty when the test can run.
#define NB_SKIP_UNLESS(reason_expr)                                                               \
    do {                                                                                          \
        const std::string nb_reason_ = (reason_expr);                                             \
        if (!nb_reason_.empty()) {                                                                \
            if (::nb::test::skips_are_failures()) {                                               \
                FAIL() << "privileged test cannot run (and CI forbids skipping): " << nb_reason_; \
            }                                                                                     \
            GTEST_SKIP() << "skipped: " << nb_reason_;                                            \
        }                                                                                         \
    } while (0)

#define NB_REQUIRE_ROOT() \
    NB_SKIP_UNLESS(::geteuid() == 0 ? std::string() : std::string("needs root"))
