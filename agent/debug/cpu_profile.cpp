#include "agent/debug/cpu_profile.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "base/errno_text.hpp"

#ifdef NB_HAVE_LIBPROFILER
#include <gperftools/profiler.h>
#endif

namespace nb::debug {

#ifdef NB_HAVE_LIBPROFILER
namespace {

// start() and stop() as a pair: the profiler's state is one per process.
std::mutex g_profiler_mutex;

bool profiler_enabled() {
    ProfilerState s{};
    ProfilerGetCurrentState(&s);
    return s.enabled != 0;
}

// Creates or truncates the file here, for an errno libprofiler would not tell.
void check_writable(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        throw std::runtime_error("cannot write the CPU profile to " + path + ": " +
                                 errno_text(errno));
    }
    ::close(fd);
}

}  // namespace
#endif

CpuProfiler::~CpuProfiler() {
    if (started_) stop();
}

bool CpuProfiler::available() {
#ifdef NB_HAVE_LIBPROFILER
    return true;
#else
    return false;
#endif
}

int CpuProfiler::sampling_hz() {
    // Parsed as libprofiler parses it (profile-handler.cc): a whole positive number.
    const char* env = std::getenv("CPUPROFILE_FREQUENCY");
    unsigned hz = 0;
    char junk = 0;
    if (env && std::sscanf(env, "%u%c", &hz, &junk) == 1 && hz > 0)
        return static_cast<int>(std::min(hz, 4000u));
    return 100;
}

void CpuProfiler::start(const std::string& path, int frequency_hz) {
#ifdef NB_HAVE_LIBPROFILER
    std::lock_guard lock(g_profiler_mutex);
    if (profiler_enabled()) throw std::runtime_error("the CPU profiler is already running");
    if (frequency_hz != sampling_hz()) {
        throw std::runtime_error(
            "the CPU profiler samples at " + std::to_string(sampling_hz()) +
            " Hz, fixed when the process starts (CPUPROFILE_FREQUENCY); asked for " +
            std::to_string(frequency_hz) + " Hz");
    }
    check_writable(path);
    ProfilerOptions options{};
    if (!ProfilerStartWithOptions(path.c_str(), &options)) {
        throw std::runtime_error(
            "the CPU profiler did not start (is another SIGPROF handler installed?)");
    }
    started_ = true;
#else
    (void)path;
    (void)frequency_hz;
    throw std::runtime_error("this nbagent was built without gperftools (libprofiler)");
#endif
}

bool CpuProfiler::running() const {
#ifdef NB_HAVE_LIBPROFILER
    std::lock_guard lock(g_profiler_mutex);
    return profiler_enabled();
#else
    return false;
#endif
}

void CpuProfiler::stop() {
    started_ = false;
#ifdef NB_HAVE_LIBPROFILER
    std::lock_guard lock(g_profiler_mutex);
    if (profiler_enabled()) ProfilerStop();
#endif
}

}  // namespace nb::debug
