#include "agent/metrics/prometheus_text.hpp"

#include <spdlog/fmt/fmt.h>

#include <iterator>

namespace nb {

std::string escape_label_value(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

namespace {

// One metric family at a time: HELP and TYPE once, then its samples, each with the
// interface label first.
class Writer {
  public:
    explicit Writer(const std::string& interface)
        : iface_("interface=\"" + escape_label_value(interface) + "\"") {
        out_.reserve(8192);
    }

    void family(std::string_view name, std::string_view type, std::string_view help) {
        fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                       type);
    }
    // `labels`: more labels after the interface, as `a="x",b="y"` (values escaped).
    // A value is a count (uint64_t, written as an integer) or a measure (double).
    template <typename Value>
    void sample(std::string_view name, std::string_view labels, Value value) {
        fmt::format_to(std::back_inserter(out_), "{}{{{}{}{}}} {}\n", name, iface_,
                       labels.empty() ? "" : ",", labels, value);
    }
    // A sample without the interface label (process_*: one process, whatever it serves).
    template <typename Value>
    void bare(std::string_view name, Value value) {
        fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
    }

    void counter(std::string_view name, std::string_view help, uint64_t value) {
        family(name, "counter", help);
        sample(name, "", value);
    }
    void gauge(std::string_view name, std::string_view help, double value) {
        family(name, "gauge", help);
        sample(name, "", value);
    }
    // One label whose values are an enum's names, a counter for each.
    template <typename E, size_t N, size_t M>
    void by_name(std::string_view name, std::string_view type, std::string_view help,
                 std::string_view label, const EnumName<E> (&names)[N],
                 const std::array<uint64_t, M>& values) {
        static_assert(N == M);
        family(name, type, help);
        for (size_t i = 0; i < N; ++i)
            sample(name, fmt::format("{}=\"{}\"", label, names[i].name), values[i]);
    }

    void histogram(std::string_view name, std::string_view help, const HistogramSnapshot& h) {
        family(name, "histogram", help);
        const std::string bucket = std::string(name) + "_bucket";
        uint64_t below = 0;
        size_t i = 0;
        for (unsigned shift = kPrometheusMinShift; shift <= kPrometheusMaxShift; ++shift) {
            const uint64_t edge = uint64_t{1} << shift;
            for (; i < h.buckets.size() && histogram_bucket_upper(i) <= edge; ++i)
                below += h.buckets[i];
            sample(bucket, fmt::format("le=\"{}\"", static_cast<double>(edge) / 1e9), below);
        }
        sample(bucket, "le=\"+Inf\"", h.count);
        sample(std::string(name) + "_sum", "", static_cast<double>(h.sum_ns) / 1e9);
        sample(std::string(name) + "_count", "", h.count);
    }

    std::string take() { return std::move(out_); }

  private:
    std::string iface_;
    std::string out_;
};

// The agent and its peers: info, settings, states, wakes and their outcomes.
void write_lazy(Writer& w, const MetricsSnapshot& s) {
    w.family("nbagent_info", "gauge",
             "The agent: version, WireGuard backend, trigger engine and attach mode (always 1).");
    w.sample("nbagent_info",
             fmt::format("version=\"{}\",wg_backend=\"{}\",trigger=\"{}\",attach_mode=\"{}\"",
                         escape_label_value(s.version), to_string(s.wg_backend),
                         to_string(s.trigger), to_string(s.attach_mode)),
             uint64_t{1});
    w.gauge("nbagent_lazy",
            "Whether lazy connections are on (1) or every peer is kept connected (0).",
            s.status.lazy ? 1.0 : 0.0);
    w.gauge("nbagent_wireguard_up",
            "Whether WireGuard answers the agent (1), or is not answering or gone (0).",
            s.wireguard_up ? 1.0 : 0.0);
    w.gauge("nbagent_inactivity_threshold_seconds",
            "A Connected peer without traffic for this long goes back to Idle.",
            static_cast<double>(s.status.inactivity_threshold_ms) / 1e3);

    w.family("nbagent_peers", "gauge", "Peers by lazy state.");
    w.sample("nbagent_peers", "state=\"idle\"", s.status.idle);
    w.sample("nbagent_peers", "state=\"connecting\"", s.status.connecting);
    w.sample("nbagent_peers", "state=\"connected\"", s.status.connected);

    w.by_name("nbagent_wakes_total", "counter",
              "Wakes the agent started or saw, by what started them.", "reason", kWakeReasonNames,
              s.counters.wakes);
    w.by_name("nbagent_wake_failures_total", "counter", "Wakes that failed, by cause.", "cause",
              kWakeFailureNames, s.counters.failures);
    w.by_name(
        "nbagent_idles_total", "counter",
        "Peers sent back to Idle, by reason (failed wakes count in nbagent_wake_failures_total).",
        "reason", kIdleReasonNames, s.counters.idles);
    w.histogram("nbagent_time_to_connected_seconds",
                "Time from the waking packet to Connected, for wakes the agent started.",
                s.time_to_connected);
}

// Packets, the ring buffer, admission, connectors and network maps.
void write_traffic(Writer& w, const MetricsSnapshot& s) {
    w.counter("nbagent_packets_held_total",
              "Packets of Idle and Connecting peers the datapath held and handed to the agent.",
              s.counters.packets_held);
    w.counter("nbagent_packets_replayed_total",
              "Held packets re-injected once the peer's endpoint was set.",
              s.counters.packets_replayed);
    w.counter("nbagent_packets_dropped_total",
              "Held packets the agent dropped (over the hold limit, backing off, a failed wake, "
              "WireGuard not answering).",
              s.counters.packets_dropped);

    w.counter("nbagent_ring_reports_total",
              "Reports the agent took from the BPF ring buffer (held packets, first replies).",
              s.ring_reports);
    w.counter("nbagent_ring_lost_reports_total",
              "Reports the BPF ring buffer could not take because the agent fell behind.",
              s.status.lost_reports);
    w.counter("nbagent_ring_lost_recovered_total",
              "Peers woken or confirmed from the marks the programs left for lost reports.",
              s.status.lost_recovered);

    w.gauge("nbagent_wakes_queued",
            "Wakes of unproven peers waiting for admission now (--wake-rate).",
            static_cast<double>(s.status.wakes_queued));
    w.counter("nbagent_wakes_deferred_total",
              "Wakes of unproven peers that had to wait for admission.", s.status.wakes_deferred);
    w.counter("nbagent_wakes_shed_total", "Wakes refused because the admission queue was full.",
              s.status.wakes_shed);

    w.gauge("nbagent_connector_threads", "Worker threads of the connector pool.",
            static_cast<double>(s.pool.threads));
    w.gauge("nbagent_connector_busy", "Connector workers running a connector now.",
            static_cast<double>(s.pool.busy));
    w.gauge("nbagent_connector_queued", "Connector jobs waiting for a worker.",
            static_cast<double>(s.pool.queued));

    w.family("nbagent_map_updates_total", "counter",
             "Network maps applied, by source (apply request or SIGHUP), and those refused.");
    w.sample("nbagent_map_updates_total", "source=\"apply\"", s.maps.applied);
    w.sample("nbagent_map_updates_total", "source=\"sighup\"", s.maps.reloaded);
    w.counter("nbagent_map_update_failures_total",
              "Network maps refused (a bad config, or WireGuard refused them).", s.maps.failed);
    w.family("nbagent_map_peers_total", "counter", "Peers changed by network maps, by change.");
    w.sample("nbagent_map_peers_total", "change=\"added\"", s.maps.added);
    w.sample("nbagent_map_peers_total", "change=\"removed\"", s.maps.removed);
    w.sample("nbagent_map_peers_total", "change=\"changed\"", s.maps.changed);
    w.histogram("nbagent_map_update_duration_seconds",
                "How long applying a network map took, from request to routes in place.",
                s.maps.duration.snapshot());
}

// The metrics' own age and the process (without the interface label: one process).
void write_process(Writer& w, const debug::ResourceUse& process, double snapshot_age_s,
                   double start_time_s) {
    w.gauge("nbagent_metrics_snapshot_age_seconds",
            "Age of the numbers in this scrape: above 0 when the event loop was too busy to "
            "answer at once.",
            snapshot_age_s);

    w.family("process_cpu_seconds_total", "counter", "User and system CPU time of the agent.");
    w.bare("process_cpu_seconds_total",
           static_cast<double>(process.user_cpu_us + process.system_cpu_us) / 1e6);
    w.family("process_resident_memory_bytes", "gauge", "Resident memory of the agent.");
    w.bare("process_resident_memory_bytes", process.rss_bytes);
    w.family("process_virtual_memory_bytes", "gauge", "Address space of the agent.");
    w.bare("process_virtual_memory_bytes", process.vm_bytes);
    w.family("process_open_fds", "gauge", "Open file descriptors of the agent.");
    w.bare("process_open_fds", process.fds);
    w.family("process_max_fds", "gauge", "The agent's limit of open file descriptors.");
    w.bare("process_max_fds", process.fd_limit);
    w.family("process_threads", "gauge", "Threads of the agent.");
    w.bare("process_threads", process.threads);
    w.family("process_start_time_seconds", "gauge", "When the agent started, in unix seconds.");
    w.bare("process_start_time_seconds", start_time_s);
}

}  // namespace

std::string prometheus_text(const MetricsSnapshot& s, const debug::ResourceUse& process,
                            double snapshot_age_s) {
    Writer w(s.interface);
    write_lazy(w, s);
    write_traffic(w, s);
    write_process(w, process, snapshot_age_s, s.start_time_s);
    return w.take();
}

}  // namespace nb
