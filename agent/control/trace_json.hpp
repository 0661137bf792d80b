// The wire form of the lazy manager's trace events (agent/lazy/trace_event.hpp): one
// JSON object per event, stamped with the time it happened: for a live trace, the time it
// is put into words (the manager reports synchronously); for the kept ring, its stamp.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "agent/lazy/trace_event.hpp"

namespace nb {

nlohmann::json trace_json(const TraceEvent& ev);
nlohmann::json trace_json(const TraceEvent& ev, int64_t unix_ms);

}  // namespace nb
