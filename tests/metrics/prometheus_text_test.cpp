// The text exposition format of /metrics: series, labels, histograms and escaping.
#include <gtest/gtest.h>

#include <map>
#include <sstream>
#include <string>

#include "agent/metrics/prometheus_text.hpp"

namespace nb {
namespace {

MetricsSnapshot sample() {
    MetricsSnapshot s;
    s.interface = "wg0";
    s.version = "0.1.0-g1234567";
    s.wg_backend = WgBackend::Userspace;
    s.trigger = TriggerEngine::Bpf;
    s.attach_mode = AttachMode::Tcx;
    s.status.idle = 5;
    s.status.connecting = 1;
    s.status.connected = 2;
    s.counters.wake(WakeReason::Packet) = 7;
    s.counters.wake(WakeReason::Group) = 3;
    s.counters.failure(WakeFailure::HandshakeTimeout) = 2;
    s.counters.idle(IdleReason::Inactivity) = 4;
    s.counters.packets_held = 11;
    s.status.inactivity_threshold_ms = 90'000;
    LatencyHistogram h;
    h.record(500'000);          // 0.5 ms: at or below 2^19 ns (0.52 ms)
    h.record(3'000'000);        // 3 ms: above 2^21 ns (2.1 ms), at or below 2^22 ns
    h.record(200'000'000'000);  // 200 s: beyond the last bound
    s.time_to_connected = h.snapshot();
    s.maps.applied = 2;
    s.maps.added = 10;
    return s;
}

// The value of the line that starts with `series ` ("" when there is none).
std::string value_of(const std::string& text, const std::string& series) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(series + " ", 0) == 0) return line.substr(series.size() + 1);
    return "";
}

TEST(PrometheusText, SeriesCarryTheInterfaceAndTheirLabels) {
    const std::string t = prometheus_text(sample(), {}, 0);
    EXPECT_EQ(value_of(t, R"(nbagent_peers{interface="wg0",state="idle"})"), "5");
    EXPECT_EQ(value_of(t, R"(nbagent_peers{interface="wg0",state="connecting"})"), "1");
    EXPECT_EQ(value_of(t, R"(nbagent_peers{interface="wg0",state="connected"})"), "2");
    EXPECT_EQ(value_of(t, R"(nbagent_wakes_total{interface="wg0",reason="packet"})"), "7");
    EXPECT_EQ(value_of(t, R"(nbagent_wakes_total{interface="wg0",reason="group"})"), "3");
    EXPECT_EQ(value_of(t, R"(nbagent_wakes_total{interface="wg0",reason="operator"})"), "0");
    EXPECT_EQ(
        value_of(t, R"(nbagent_wake_failures_total{interface="wg0",cause="handshake_timeout"})"),
        "2");
    EXPECT_EQ(value_of(t, R"(nbagent_idles_total{interface="wg0",reason="inactivity"})"), "4");
    EXPECT_EQ(value_of(t, R"(nbagent_packets_held_total{interface="wg0"})"), "11");
    EXPECT_EQ(value_of(t, R"(nbagent_inactivity_threshold_seconds{interface="wg0"})"), "90");
    EXPECT_EQ(value_of(t, R"(nbagent_map_updates_total{interface="wg0",source="apply"})"), "2");
    EXPECT_EQ(value_of(t, R"(nbagent_map_peers_total{interface="wg0",change="added"})"), "10");
    EXPECT_EQ(value_of(t, R"(nbagent_info{interface="wg0",version="0.1.0-g1234567",)"
                          R"(wg_backend="userspace",trigger="bpf",attach_mode="tcx"})"),
              "1");
}

TEST(PrometheusText, HistogramBucketsAreCumulativeAndExact) {
    const std::string t = prometheus_text(sample(), {}, 0);
    const std::string b = R"(nbagent_time_to_connected_seconds_bucket{interface="wg0",le=")";
    EXPECT_EQ(value_of(t, b + R"(0.000131072"})"), "0");
    EXPECT_EQ(value_of(t, b + R"(0.000524288"})"), "1");
    EXPECT_EQ(value_of(t, b + R"(0.002097152"})"), "1");
    EXPECT_EQ(value_of(t, b + R"(0.004194304"})"), "2");
    EXPECT_EQ(value_of(t, b + R"(137.438953472"})"), "2");
    EXPECT_EQ(value_of(t, b + R"(+Inf"})"), "3");
    EXPECT_EQ(value_of(t, R"(nbagent_time_to_connected_seconds_count{interface="wg0"})"), "3");
    EXPECT_EQ(value_of(t, R"(nbagent_time_to_connected_seconds_sum{interface="wg0"})"), "200.0035");
}

TEST(PrometheusText, EveryFamilyHasHelpAndTypeOnce) {
    const std::string t = prometheus_text(sample(), {}, 0);
    std::istringstream in(t);
    std::map<std::string, int> help, type;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# HELP ", 0) == 0) ++help[line.substr(7, line.find(' ', 7) - 7)];
        if (line.rfind("# TYPE ", 0) == 0) ++type[line.substr(7, line.find(' ', 7) - 7)];
    }
    EXPECT_GT(help.size(), 20u);
    EXPECT_EQ(help.size(), type.size());
    for (const auto& [name, n] : help) EXPECT_EQ(n, 1) << name;
    for (const auto& [name, n] : type) EXPECT_EQ(help.count(name), 1u) << name;
}

TEST(PrometheusText, ProcessSeriesComeFromTheResourceUse) {
    debug::ResourceUse u;
    u.rss_bytes = 4096;
    u.fds = 12;
    u.user_cpu_us = 1'500'000;
    u.system_cpu_us = 500'000;
    const std::string t = prometheus_text(sample(), u, 1.25);
    EXPECT_EQ(value_of(t, "process_resident_memory_bytes"), "4096");
    EXPECT_EQ(value_of(t, "process_open_fds"), "12");
    EXPECT_EQ(value_of(t, "process_cpu_seconds_total"), "2");
    EXPECT_EQ(value_of(t, R"(nbagent_metrics_snapshot_age_seconds{interface="wg0"})"), "1.25");
}

TEST(PrometheusText, LabelValuesAreEscaped) {
    EXPECT_EQ(escape_label_value(R"(a"b\c)"), R"(a\"b\\c)");
    EXPECT_EQ(escape_label_value("a\nb"), R"(a\nb)");
    MetricsSnapshot s = sample();
    s.version = "1.0\"x";
    const std::string t = prometheus_text(s, {}, 0);
    EXPECT_NE(t.find(R"(version="1.0\"x")"), std::string::npos);
}

}  // namespace
}  // namespace nb
