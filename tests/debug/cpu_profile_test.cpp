// CpuProfiler: a profile of a busy function that google-pprof reads back, and the errors
// start() names. Built without gperftools, start() must say so.
#include "agent/debug/cpu_profile.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <stdexcept>

namespace nb::debug_test {
namespace {

std::string error_of(debug::CpuProfiler& p, const std::string& path, int hz) {
    try {
        p.start(path, hz);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "";
}

double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::string run(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
    return out;
}

std::filesystem::path temp_profile() {
    return std::filesystem::temp_directory_path() /
           ("nb_cpu_profile_test." + std::to_string(::getpid()) + ".prof");
}

}  // namespace

// Spins for about a second of this thread's CPU time; the loop is the function's own code.
[[gnu::noinline]] uint64_t busy_work_for_the_profiler() {
    volatile uint64_t acc = 1;
    const double until = thread_cpu_seconds() + 1.0;
    while (thread_cpu_seconds() < until) {
        for (int i = 0; i < 1'000'000; ++i) acc = acc * 6364136223846793005u + 1442695040888963407u;
    }
    return acc;
}

TEST(CpuProfiler, ProfileOfABusyFunctionNamesIt) {
    debug::CpuProfiler profiler;
    if (!debug::CpuProfiler::available()) GTEST_SKIP() << "built without gperftools";
    const char* ci = std::getenv("CI");
    if (run("command -v google-pprof").empty()) {
        if (ci && std::string(ci) == "true") FAIL() << "google-pprof is missing (CI=true)";
        GTEST_SKIP() << "google-pprof is missing (Debian: google-perftools)";
    }
    const auto path = temp_profile();
    profiler.start(path.string());
    EXPECT_TRUE(profiler.running());
    busy_work_for_the_profiler();
    profiler.stop();
    EXPECT_FALSE(profiler.running());
    const std::string text = run("google-pprof --text /proc/" + std::to_string(::getpid()) +
                                 "/exe " + path.string() + " 2>&1");
    std::filesystem::remove(path);
    EXPECT_NE(text.find("busy_work_for_the_profiler"), std::string::npos) << text;
}

TEST(CpuProfiler, StartNamesWhatIsWrong) {
    debug::CpuProfiler profiler;
    if (!debug::CpuProfiler::available()) {
        EXPECT_EQ(error_of(profiler, "/tmp/x.prof", 100),
                  "this nbagent was built without gperftools (libprofiler)");
        EXPECT_FALSE(profiler.running());
        return;
    }
    EXPECT_NE(error_of(profiler, "/nonexistent-dir/cpu.prof", 100)
                  .find("cannot write the CPU profile to /nonexistent-dir/cpu.prof: No such file"),
              std::string::npos);
    EXPECT_NE(error_of(profiler, temp_profile().string(), 250).find("asked for 250 Hz"),
              std::string::npos);
    EXPECT_FALSE(profiler.running());

    const auto path = temp_profile();
    profiler.start(path.string());
    debug::CpuProfiler other;
    EXPECT_EQ(error_of(other, path.string() + ".2", 100), "the CPU profiler is already running");
    EXPECT_TRUE(other.running());  // process-wide
    profiler.stop();
    profiler.stop();  // idempotent
    EXPECT_FALSE(profiler.running());
    std::filesystem::remove(path);
}

TEST(CpuProfiler, DestructorStopsWhatItStarted) {
    if (!debug::CpuProfiler::available()) GTEST_SKIP() << "built without gperftools";
    const auto path = temp_profile();
    {
        debug::CpuProfiler profiler;
        profiler.start(path.string());
    }
    EXPECT_FALSE(debug::CpuProfiler().running());
    std::filesystem::remove(path);
}

}  // namespace nb::debug_test
