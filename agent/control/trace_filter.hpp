// Whether a trace event, in its wire form, is one a client asked for (TraceFilter): the
// agent applies it to the kept events it sends, the CLI to live ones, so both select alike.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "agent/control/request.hpp"

namespace nb {

// `ip_key`: the key of the peer that routes filter.ip ("" when no ip was asked for).
bool trace_matches(const TraceFilter& f, const std::string& ip_key, const nlohmann::json& ev);

}  // namespace nb
