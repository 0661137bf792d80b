// The agent's metrics in Prometheus' text exposition format (version 0.0.4): the wire
// format of /metrics, mapped from the domain's counts. docs/metrics.md lists the series.
#pragma once

#include <string>
#include <string_view>

#include "agent/debug/resources.hpp"
#include "agent/metrics/metrics_snapshot.hpp"

namespace nb {

inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// Every series, labelled with the interface; `process` gives the process_* series and
// `snapshot_age_s` how old the snapshot is (the event loop was busy when it was asked).
std::string prometheus_text(const MetricsSnapshot& s, const debug::ResourceUse& process,
                            double snapshot_age_s);

// A label value with \, " and newlines escaped, as the format wants them.
std::string escape_label_value(std::string_view v);

// The upper bounds (in seconds) of a histogram's buckets: octaves from 2^17 ns (131 us) to
// 2^37 ns (137 s). They are bucket edges of base/latency_histogram.hpp, so each cumulative
// count is exact.
inline constexpr unsigned kPrometheusMinShift = 17, kPrometheusMaxShift = 37;

}  // namespace nb
