// How the running agent logs: every line to stderr (stdout is for command output, and
// systemd's journal takes stderr as it is), stamped in UTC RFC 3339 with milliseconds,
// the clock `nbagent trace` and status use.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "agent/engine/agent.hpp"

namespace nb {

namespace engine {

std::unique_ptr<spdlog::formatter> agent_log_formatter() {
    return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ [%l] %v",
                                                       spdlog::pattern_time_type::utc);
}

}  // namespace engine

void set_log_level(LogLevel level) {
    static_assert(spdlog::level::trace == static_cast<int>(LogLevel::Trace) &&
                  spdlog::level::info == static_cast<int>(LogLevel::Info) &&
                  spdlog::level::warn == static_cast<int>(LogLevel::Warn) &&
                  spdlog::level::err == static_cast<int>(LogLevel::Error));
    spdlog::set_level(static_cast<spdlog::level::level_enum>(level));
}

void log_like_an_agent() {
    // Not registered by name: a second agent in one process (a bench) makes a new one.
    auto logger = std::make_shared<spdlog::logger>(
        "nbagent", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    logger->set_formatter(engine::agent_log_formatter());
    logger->set_level(spdlog::get_level());
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace nb
