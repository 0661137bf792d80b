// The wire form of the lazy manager's trace events (agent/lazy/trace_event.hpp): one
// JSON object per event, stamped with the time it is put into words, which is when it
// happened (the manager reports synchronously).
#pragma once

#include <nlohmann/json.hpp>

#include "agent/lazy/trace_event.hpp"

namespace nb {

nlohmann::json trace_json(const TraceEvent& ev);

}  // namespace nb
