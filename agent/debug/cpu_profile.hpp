// A CPU profile of the whole process in gperftools' format, which pprof reads
// (`google-pprof --text nbagent cpu.prof`, or `go tool pprof`), for `nbagent debug bundle`.
// Sampling is libprofiler's: SIGPROF from a process-wide ITIMER_PROF, so it counts CPU
// time of every thread that does not block SIGPROF (block_agent_signals() leaves it
// alone). Built without gperftools (NB_CPU_PROFILER=OFF, the default under
// NB_SANITIZE), available() is false and start() says so.
#pragma once

#include <string>

namespace nb::debug {

class CpuProfiler {
  public:
    CpuProfiler() = default;
    CpuProfiler(const CpuProfiler&) = delete;
    CpuProfiler& operator=(const CpuProfiler&) = delete;
    // Stops a profile this object started (and writes its file).
    ~CpuProfiler();

    // Whether this build has the profiler.
    static bool available();
    // The sampling rate: libprofiler reads CPUPROFILE_FREQUENCY (default 100, at most
    // 4000) once, when it loads, so it is fixed for the life of the process.
    static int sampling_hz();

    // Starts sampling into `path` (created or truncated, mode 0600). Throws
    // std::runtime_error naming the problem: built without gperftools, already running
    // (here or through the CPUPROFILE variable), path not writable, frequency_hz other
    // than sampling_hz(), or libprofiler refusing (another SIGPROF handler).
    void start(const std::string& path, int frequency_hz = 100);
    // Whether the process-wide profiler is on, whoever started it.
    bool running() const;
    // Stops the process-wide profiler and writes the file; nothing if it is not running.
    void stop();

  private:
    bool started_ = false;
};

}  // namespace nb::debug
