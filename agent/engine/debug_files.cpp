#include "agent/engine/debug_files.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <optional>

#include "agent/control/trace_json.hpp"
#include "agent/debug/resources.hpp"
#include "agent/debug/thread_stacks.hpp"
#include "base/blocking.hpp"
#include "base/contended_mutex.hpp"
#include "base/errno_text.hpp"
#include "base/file_io.hpp"
#include "base/unique_fd.hpp"

namespace nb::engine {

namespace {

void write_file(const std::string& path, const std::string& text) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd.get() < 0) throw std::runtime_error(path + ": " + errno_text(errno));
    if (int err = write_all(fd.get(), text))
        throw std::runtime_error(path + ": " + errno_text(err));
}

std::string trace_ndjson(const std::vector<StampedTraceEvent>& events) {
    std::string out;
    out.reserve(events.size() * 160);
    for (const StampedTraceEvent& e : events) {
        out += trace_json(e.event, e.unix_ms)
                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        out += '\n';
    }
    return out;
}

std::string log_lines(const DebugSnapshot& s) {
    if (!s.log) return "(no log ring: --log-ring 0)\n";
    std::string out;
    for (const std::string& line : s.log->last_formatted()) out += line;
    return out;
}

}  // namespace

std::vector<std::string> write_debug_files(const DebugSnapshot& snap, const std::string& dir,
                                           std::vector<std::string>& errors) {
    // Each file is made only when its turn comes, so the biggest is never held twice.
    const std::pair<const char*, std::function<std::optional<std::string>()>> files[] = {
        {"settings.json", [&] { return snap.settings.dump(2) + "\n"; }},
        {"trace.ndjson", [&] { return trace_ndjson(snap.trace); }},
        {"agent.log", [&] { return log_lines(snap); }},
        {"bpf.txt", [&] { return snap.bpf; }},
        {"latency.txt", [&] { return snap.latency; }},
        // None while no peer is idle under BPF/UDP (a clean exit removes it).
        {"state-file.json", [&] { return read_whole_file(snap.state_file); }},
        {"resources.txt", [&] { return snap.resources; }},
        // Of the whole process, and safe from any thread: read here, as late as possible.
        {"stacks.txt", [] { return debug::thread_stacks(); }},
        {"allocations.txt", [] { return debug::allocation_summary(); }},
        {"locks.txt",
         [] {
             return "# waits for a lock another thread held, since the start\n" +
                    render_locks(lock_snapshot());
         }},
        {"blocking.txt",
         [] {
             return "# time the event loop spent in calls that can block, since the start\n" +
                    render_blocking(blocking_snapshot());
         }},
    };
    std::vector<std::string> written;
    for (const auto& [name, make] : files) {
        try {
            std::optional<std::string> text = make();
            if (!text) continue;
            write_file(dir + "/" + name, *text);
            written.push_back(name);
        } catch (const std::exception& e) {
            errors.push_back(std::string(name) + ": " + e.what());
        }
    }
    return written;
}

}  // namespace nb::engine
