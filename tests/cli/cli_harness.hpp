// Runs `nbagent ARGS…` in the test's process (run_cli), with a made-up environment and
// a stand-in for the agent that records the RunOptions it was given.
#pragma once

#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "tests/support/privileged.hpp"

namespace nb::cli {

inline EnvLookup env_of(std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

struct CliResult {
    int code;
    std::string out, err;
};

inline CliResult cli(std::vector<std::string> args, std::map<std::string, std::string> env = {},
                     std::optional<RunOptions>* ran = nullptr) {
    args.insert(args.begin(), "nbagent");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    testing::internal::CaptureStdout();
    testing::internal::CaptureStderr();
    const int code = run_cli(
        static_cast<int>(argv.size()), argv.data(),
        [&](const RunOptions& o) {
            if (ran) *ran = o;
            return 0;
        },
        env_of(env));
    std::cout.flush();
    CliResult r{code, testing::internal::GetCapturedStdout(),
                testing::internal::GetCapturedStderr()};
    return r;
}

class CliAsRoot : public ::testing::Test {
  protected:
    void SetUp() override { NB_REQUIRE_ROOT(); }  // `run` refuses to go further otherwise
};

}  // namespace nb::cli
