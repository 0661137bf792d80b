// The agent's part of a debug bundle: what the loop takes (a snapshot, quickly) and the
// files a writer thread makes of it in the bundle's directory, so the loop never waits
// for a file or for putting 100,000 trace events into words.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <nlohmann/json.hpp>

#include "agent/lazy/trace_ring.hpp"

namespace nb::engine {

struct DebugSnapshot {
    std::vector<StampedTraceEvent> trace;
    nlohmann::json settings;  // settings.json
    std::string bpf;          // bpf.txt (read on the loop: it holds the datapath)
    std::string latency;      // latency.txt: wake phases and idle transitions
    std::string resources;    // resources.txt (with what only the loop may read)
    std::string state_file;   // its path; copied as it is
    std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> log;  // thread-safe to read
};

// Writes each file into `dir` (mode 0600) and returns their names; a file that fails is
// named in `errors` and the others are still written.
std::vector<std::string> write_debug_files(const DebugSnapshot& snap, const std::string& dir,
                                           std::vector<std::string>& errors);

}  // namespace nb::engine
