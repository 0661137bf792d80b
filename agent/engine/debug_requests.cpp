// The agent's side of `nbagent debug bundle`: a directory per bundle under the run
// directory, the CPU profile, and the agent's files written off the loop. The CLI adds
// what it can read itself (status, WireGuard, tc), anonymizes and packs.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <spdlog/spdlog.h>

#include "agent/engine/agent.hpp"
#include "agent/engine/debug_files.hpp"
#include "base/errno_text.hpp"
#include "base/time.hpp"
#include "loader/bpf_report.hpp"

namespace nb::engine {

namespace {

// A start whose CLI went away (killed between steps) stops holding the next one back
// this long after its profile's end.
constexpr uint64_t kAbandonedAfterNs = 120'000'000'000ull;

std::string bundle_prefix(const std::string& interface) {
    return "debug-" + interface + "-";
}

// Directories of earlier bundles of this interface that no CLI removed (it was killed).
void remove_leftovers(const std::string& run_dir, const std::string& interface) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(run_dir, ec)) {
        const std::string name = e.path().filename().string();
        if (name.rfind(bundle_prefix(interface), 0) == 0 && e.is_directory(ec))
            std::filesystem::remove_all(e.path(), ec);
    }
}

}  // namespace

nlohmann::json Agent::debug_request(const DebugRequest& r) {
    switch (r.step) {
        case DebugRequest::Step::Start:
            return debug_start(r);
        case DebugRequest::Step::Collect:
            return debug_collect(r);
        case DebugRequest::Step::Poll:
            return debug_poll(r);
    }
    throw std::invalid_argument("unknown debug step");
}

nlohmann::json Agent::debug_start(const DebugRequest& r) {
    const uint64_t now = monotonic_ns();
    if (debug_) {
        if (now < debug_->abandoned_after_ns && !debug_->written)
            throw std::runtime_error("a debug bundle is being taken (" + debug_->dir +
                                     "); try again when it is done");
        stop_cpu_profile();
        debug_.reset();  // joins a writer that is done
    }
    remove_leftovers(opts_.run_dir, opts_.interface);
    auto s = std::make_unique<DebugSession>();
    s->dir = opts_.run_dir + "/" + bundle_prefix(opts_.interface) + std::to_string(unix_ms());
    if (::mkdir(s->dir.c_str(), 0700) != 0)
        throw std::runtime_error("creating " + s->dir + ": " + errno_text(errno));
    s->profile = r.profile_ms ? start_cpu_profile(s->dir + "/cpu.prof") : "not asked for";
    s->profile_until_ns = now + r.profile_ms * 1'000'000ull;
    s->abandoned_after_ns = s->profile_until_ns + kAbandonedAfterNs;
    debug_ = std::move(s);
    spdlog::info("debug bundle: started in {} (CPU profile: {})", debug_->dir, debug_->profile);
    return {{"ok", true}, {"dir", debug_->dir}, {"cpu_profile", debug_->profile}};
}

DebugSession& Agent::debug_session(const std::string& dir) {
    if (!debug_ || debug_->dir != dir)
        throw std::invalid_argument("no debug bundle is being taken in " + dir);
    return *debug_;
}

nlohmann::json Agent::debug_collect(const DebugRequest& r) {
    DebugSession& s = debug_session(r.dir);
    if (s.writer.joinable()) throw std::runtime_error("already collecting " + s.dir);
    stop_cpu_profile();
    // On the loop, quickly: copies and what only the loop may read.
    auto snap = std::make_shared<DebugSnapshot>();
    snap->trace = trace_ring_.snapshot();
    snap->settings = debug_settings();
    snap->bpf = debug_bpf_text();
    snap->latency = debug_latency_text();
    snap->resources = debug_resources_text();
    snap->state_file = state_path_;
    snap->log = log_ring_;
    s.writer = std::thread([&s, snap] {
        std::vector<std::string> errors;
        s.files = write_debug_files(*snap, s.dir, errors);
        for (const std::string& e : errors) s.error += (s.error.empty() ? "" : "; ") + e;
        s.written = true;
    });
    return {{"ok", true}, {"pending", true}};
}

nlohmann::json Agent::debug_poll(const DebugRequest& r) {
    DebugSession& s = debug_session(r.dir);
    if (!s.writer.joinable()) throw std::runtime_error("nothing is being collected in " + s.dir);
    if (!s.written) return {{"ok", true}, {"done", false}};
    s.writer.join();
    nlohmann::json reply = {{"ok", true},        {"done", true},
                            {"files", s.files},  {"cpu_profile", s.profile},
                            {"pid", ::getpid()}, {"names", debug_names()}};
    if (!s.error.empty()) reply["errors"] = s.error;
    debug_.reset();  // the directory is the CLI's now: it packs and removes it
    return reply;
}

void Agent::debug_tick(uint64_t now_ns) {
    if (debug_ && now_ns >= debug_->profile_until_ns) stop_cpu_profile();
}

}  // namespace nb::engine
