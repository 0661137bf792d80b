// The cost of the peer lifecycle at scale (issue 4): going Idle (operator request and
// inactivity) and applying a network-map diff, through the real LazyManager, the real
// BPF datapath attached to a real WireGuard interface, each next to the bare WireGuard
// operation it is built on, so the table shows what the agent adds.
//
//   lifecycle_bench --backend kernel|userspace --peers N [--wake K] [--churn F] [--rounds R]
//                   [--keep]
//
// Every operation runs R times (default 3), the full-replace baseline once; the table
// shows the median and the range.
//
// Run as root in a throwaway network namespace (`ip netns exec`): it creates and deletes
// its own interface there. The interface stays down, so WireGuard sends nothing (the
// endpoints are TEST-NET addresses nobody answers) and the control path is all that runs.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/activity/bpf_ports.hpp"
#include "agent/lazy/lazy_manager.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/net/rtnl.hpp"
#include "bench/bench_util.hpp"
#include "loader/datapath.hpp"

namespace {

using namespace nb::bench;

// Peer i of the bench: its own key and /32, a TEST-NET-1 endpoint (never answers).
nb::PeerSpec spec_for(uint32_t i) {
    nb::PeerSpec s;
    s.wg.public_key = key_for(i, 1);
    s.wg.allowed_ips.push_back(host(64, i));
    s.endpoint = "192.0.2." + std::to_string(1 + i % 254) + ":51820";
    s.keepalive = 25;
    return s;
}

nb::SockAddr endpoint_of(const nb::PeerSpec& s) {
    auto ep = nb::SockAddr::parse_numeric(*s.endpoint);
    if (!ep) throw std::logic_error("bad bench endpoint " + *s.endpoint);
    return *ep;
}

// An ICMP echo request to the peer's address: what the egress program would have held.
std::vector<uint8_t> echo_to(const nb::IpPrefix& dst) {
    std::vector<uint8_t> p(28, 0);
    p[0] = 0x45;
    p[3] = 28;  // total length
    p[8] = 64;  // ttl
    p[9] = 1;   // ICMP
    p[12] = 10;
    p[15] = 1;  // src 10.0.0.1
    std::memcpy(&p[16], dst.addr.bytes.data(), 4);
    p[20] = 8;  // echo request
    return p;
}

// Connector jobs are recorded, not run: the bench answers them itself, so no DNS or
// thread handoff is timed, only the manager's bookkeeping and WireGuard.
class RecordingQueue : public nb::ConnectQueue {
  public:
    void submit(nb::ConnectPool::Job job) override { jobs.push_back(std::move(job)); }
    std::vector<nb::ConnectPool::Job> jobs;
};

// Nothing is re-injected in this bench (the interface is down anyway).
class NullSink : public nb::PacketSink {
  public:
    bool inject(std::span<const uint8_t>) override { return true; }
};

// Counts the time the manager spends inside WireGuard, so each row splits into
// WireGuard's share and the agent's own (bookkeeping, BPF maps, trace events).
class TimedWg : public nb::WgControl {
  public:
    explicit TimedWg(nb::WgControl& inner) : inner_(inner) {}
    nb::WgBackend backend() const override { return inner_.backend(); }
    nb::WgDevice get_device() override {
        auto t0 = Clock::now();
        nb::WgDevice d = inner_.get_device();
        ms += ms_since(t0);
        return d;
    }
    void set_device(const nb::DeviceUpdate& update) override {
        auto t0 = Clock::now();
        try {
            inner_.set_device(update);
        } catch (...) {
            ms += ms_since(t0);
            throw;
        }
        ms += ms_since(t0);
    }
    double ms = 0;

  private:
    nb::WgControl& inner_;
};

long rss_kib() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

// One operation, timed once per round; the table shows the median.
struct Row {
    std::string op;
    size_t peers = 0;
    std::vector<double> ms;
    std::vector<double> own_ms;  // ms minus the time inside WireGuard (manager rows only)
    int baseline = -1;           // index of the row this one is compared with
    bool bare = false;           // a baseline: WireGuard alone
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void print_table(const std::vector<Row>& rows) {
    std::printf(
        "\n| operation | peers | ms (median) | min-max ms | us/peer | agent's own us/peer | "
        "vs baseline |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (const auto& r : rows) {
        const double ms = median(r.ms);
        char ratio[32] = "";
        if (r.baseline >= 0)
            std::snprintf(ratio, sizeof ratio, "%.3gx", ms / median(rows[r.baseline].ms));
        char own[32] = "";
        if (!r.own_ms.empty())
            std::snprintf(own, sizeof own, "%.1f",
                          median(r.own_ms) * 1000.0 / static_cast<double>(r.peers));
        auto [lo, hi] = std::minmax_element(r.ms.begin(), r.ms.end());
        std::printf("| %s | %zu | %.1f | %.1f-%.1f | %.1f | %s | %s |\n", r.op.c_str(), r.peers, ms,
                    *lo, *hi, ms * 1000.0 / static_cast<double>(r.peers), own, ratio);
    }
    // For bench/run.sh: the operation's name up to its parenthesis, spaces as '_'.
    for (const auto& r : rows) {
        std::string op = r.op.substr(r.op.find_first_not_of(' '));
        op = op.substr(0, op.find(" ("));
        std::replace(op.begin(), op.end(), ' ', '_');
        std::printf("RESULT lifecycle op=%s peers=%zu ms=%.1f\n", op.c_str(), r.peers,
                    median(r.ms));
    }
}

struct Args {
    std::string backend;
    uint32_t peers = 0;
    uint32_t wake = 1000;
    double churn = 0.01;
    uint32_t rounds = 3;
    bool keep = false;
};

int run(const Args& a) {
    const uint32_t n = a.peers;
    const uint32_t k = a.wake;
    const auto churned = static_cast<uint32_t>(std::lround(n * a.churn));
    const std::string ifname = "nblc" + std::to_string(getpid() % 100000);

    // The baselines use it directly.
    std::unique_ptr<nb::WgControl> wg = create_interface(a.backend, ifname);
    const int ifindex = *nb::link_index(ifname);

    // Sized the way the agent sizes it (agent/engine/interface_setup.cpp, capacity_for): n plus a
    // quarter.
    nb::DatapathOptions dopts;
    dopts.max_peers = std::max<uint32_t>(4096, n + n / 4);
    dopts.max_routes = std::max<uint32_t>(dopts.max_peers, (n + churned) + (n + churned) / 4);
    auto dp = std::make_unique<nb::Datapath>(dopts);
    dp->attach(ifindex, nb::AttachMode::Auto);
    nb::BpfHold hold(*dp);
    NullSink sink;
    RecordingQueue queue;
    nb::LazyOptions lopts;
    lopts.interface = ifname;
    // Real connect_timeout and threshold defaults; the ticks below jump past the latter.
    TimedWg mgr_wg(*wg);
    auto mgr = std::make_unique<nb::LazyManager>(lopts, mgr_wg, &hold, &sink, queue,
                                                 [](const nb::TraceEvent&) {});

    std::printf(
        "lifecycle_bench: %s WireGuard, %u peers, wake %u, churn %.2f%% (%u each removed, "
        "added, changed), %u rounds, attach %s\n",
        a.backend.c_str(), n, k, a.churn * 100, churned, a.rounds,
        nb::to_string(dp->attach_mode()));
    std::fflush(stdout);

    std::vector<nb::PeerSpec> map;
    map.reserve(n);
    for (uint32_t i = 0; i < n; ++i) map.push_back(spec_for(i));
    const long rss_map = rss_kib();
    std::vector<Row> rows;
    auto row = [&](std::string op, size_t peers) {
        const bool bare = op.rfind("  baseline", 0) == 0;
        rows.push_back({std::move(op), peers, {}, {}, -1, bare});
        return rows.size() - 1;
    };
    auto timed = [&](size_t r, auto&& f) {
        const double wg_before = mgr_wg.ms;
        auto t0 = Clock::now();
        f();
        const double ms = ms_since(t0);
        rows[r].ms.push_back(ms);
        if (!rows[r].bare) rows[r].own_ms.push_back(ms - (mgr_wg.ms - wg_before));
    };

    // --- install: what the agent does at start (one WireGuard transaction).
    {
        nb::DeviceUpdate u;
        u.private_key = key_for(0xffffffff, 7);  // the kernel derives a secret per peer
        u.listen_port = 51999;
        u.replace_peers = true;
        auto copy = map;
        timed(row("install (LazyManager::install, all Idle)", n),
              [&] { mgr->install(std::move(copy), std::move(u)); });
    }
    const long rss_install = rss_kib();

    // The K peers this bench wakes and idles, spread over the map.
    std::vector<uint32_t> woken;
    for (uint32_t j = 0; j < k; ++j) woken.push_back(static_cast<uint32_t>(uint64_t{j} * n / k));
    const std::vector<uint32_t> half(woken.begin(), woken.begin() + k / 2);
    std::vector<std::vector<uint8_t>> packets;
    for (uint32_t i : woken) packets.push_back(echo_to(map[i].wg.allowed_ips[0]));

    auto expect = [&](const std::vector<uint32_t>& ids, nb::PeerState st, const char* after) {
        for (uint32_t i : ids) {
            const nb::ManagedPeer* p = mgr->find(map[i].wg.public_key);
            if (!p || p->state != st)
                throw std::runtime_error(std::string("after ") + after + ", peer " +
                                         std::to_string(i) + " is not " + nb::state_name(st));
        }
    };
    // Idle -> Connecting -> Connected the way the event loop drives it: a held packet (the
    // slot counts it, as the egress program would), the connector's answer, then the
    // peer's first reply (the ingress program flips the slot to PASS before it reports).
    // Wakes woken[0..count).
    auto wake = [&](size_t count) {
        for (size_t w = 0; w < count; ++w) {
            const uint32_t i = woken[w];
            nb_peer_slot& s = dp->slot(i);
            __atomic_fetch_add(&s.pending, 1, __ATOMIC_SEQ_CST);
            __atomic_fetch_add(&s.held, 1, __ATOMIC_RELAXED);
            size_t before = queue.jobs.size();
            mgr->on_held_packet(i, packets[w], nb::monotonic_ns());
            if (queue.jobs.size() != before + 1)
                throw std::runtime_error("peer " + std::to_string(i) + " did not start a connect");
            nb::ConnectPool::Completion done;
            done.job_id = queue.jobs.back().job_id;
            done.result.endpoint = endpoint_of(map[i]);
            mgr->on_connect_done(done);
            dp->set_state(i, NB_SLOT_PASS);
            mgr->on_rx_wake(i, nb::monotonic_ns());
        }
        queue.jobs.clear();
    };
    // The same WireGuard operation idle_peers() sends: remove and re-add, allowed IPs kept.
    auto bare_idle_op = [&](nb::DeviceUpdate& u, uint32_t i) {
        u.peers.push_back(nb::remove_peer_op(map[i].wg.public_key));
        u.peers.push_back(nb::readd_peer_op(map[i].wg));
    };

    const size_t wake_row = row("wake (held packet, connector answer, first reply)", k);
    timed(wake_row, [&] { wake(k); });
    expect(woken, nb::PeerState::Connected, "the wake");

    // Each measured operation and its baseline alternate which goes first, so neither
    // always meets a warmer (or more garbage-laden, for wireguard-go) WireGuard. When
    // the baseline goes first it clears the endpoints behind the manager's back; the
    // manager then sends the very same remove + re-add, so its cost is unchanged.

    // --- (a) operator path: `nbagent peer idle KEY`, one peer per request.
    const size_t op_row = row("idle, operator (make_idle, one peer per call)", half.size());
    const size_t op_base = row("  baseline: WG remove + re-add, one message per peer", half.size());
    rows[op_row].baseline = static_cast<int>(op_base);
    for (uint32_t r = 0; r < a.rounds; ++r) {
        auto measured = [&] {
            timed(op_row, [&] {
                for (uint32_t i : half) mgr->make_idle(map[i].wg.public_key, "bench");
            });
        };
        auto baseline = [&] {
            timed(op_base, [&] {
                for (uint32_t i : half) {
                    nb::DeviceUpdate u;
                    bare_idle_op(u, i);
                    wg->set_device(u);
                }
            });
        };
        if (r % 2) baseline();
        measured();
        if (r % 2 == 0) baseline();
        expect(half, nb::PeerState::Idle, "make_idle");
        wake(half.size());
    }
    expect(woken, nb::PeerState::Connected, "the operator rounds");

    // --- (b) inactivity: every woken peer idles in one tick, one WireGuard message.
    const size_t tick_row = row("idle, inactivity (one tick, scans all peers)", k);
    const size_t tick_base = row("  baseline: WG remove + re-add, one message", k);
    rows[tick_row].baseline = static_cast<int>(tick_base);
    for (uint32_t r = 0; r < a.rounds; ++r) {
        if (r) timed(wake_row, [&] { wake(k); });
        // Past the threshold, and past the scan time the previous tick set.
        uint64_t later = nb::monotonic_ns() +
                         static_cast<uint64_t>(std::chrono::nanoseconds(lopts.inactivity_threshold +
                                                                        std::chrono::minutes(1) +
                                                                        std::chrono::hours(r))
                                                   .count());
        nb::DeviceUpdate u;
        for (uint32_t i : woken) bare_idle_op(u, i);
        if (r % 2) timed(tick_base, [&] { wg->set_device(u); });
        timed(tick_row, [&] { mgr->tick(later); });
        if (r % 2 == 0) timed(tick_base, [&] { wg->set_device(u); });
        expect(woken, nb::PeerState::Idle, "the inactivity tick");
    }

    // --- diff apply: `churned` peers removed, as many added, as many with an extra /32,
    // spread over the map. Rounds go there and back, each a diff of the same size.
    std::vector<nb::PeerSpec> next;
    next.reserve(n);
    {
        const uint32_t stride = churned ? n / churned : 0;
        uint32_t removed = 0, changed = 0;
        for (uint32_t i = 0; i < n; ++i) {
            if (stride && i % stride == 0 && removed < churned) {
                ++removed;
                continue;
            }
            nb::PeerSpec s = map[i];
            if (stride && i % stride == 1 && changed < churned) {
                s.wg.allowed_ips.push_back(host(128, i));
                ++changed;
            }
            next.push_back(std::move(s));
        }
        for (uint32_t j = 0; j < churned; ++j) next.push_back(spec_for(n + j));
        if (removed != churned || changed != churned)
            throw std::logic_error("churn layout: " + std::to_string(removed) + " removed, " +
                                   std::to_string(changed) + " changed");
    }
    const size_t dry_row = row("diff apply, dry run (diff only)", n);
    const size_t apply_row = row("diff apply (LazyManager::apply)", n);
    const size_t full_row = row("  baseline: full replace (replace_peers, all peers)", n);
    rows[dry_row].baseline = rows[apply_row].baseline = static_cast<int>(full_row);
    for (uint32_t r = 0; r < a.rounds; ++r) {
        const auto& target = r % 2 ? map : next;
        auto check = [&](const nb::MapDiff& d) {
            if (d.added != churned || d.removed != churned || d.changed != churned ||
                d.unchanged != n - 2 * churned)
                throw std::runtime_error("unexpected diff: " + std::to_string(d.added) +
                                         " added, " + std::to_string(d.removed) + " removed, " +
                                         std::to_string(d.changed) + " changed, " +
                                         std::to_string(d.unchanged) + " unchanged");
        };
        auto copy = target;
        nb::MapDiff d;
        timed(dry_row, [&] { d = mgr->apply(std::move(copy), {}, true); });
        check(d);
        copy = target;
        timed(apply_row, [&] { d = mgr->apply(std::move(copy), {}, false); });
        check(d);

        if (r + 1 < a.rounds) continue;
        // What `wg setconf` or a restart would do: every peer of the new map in one
        // message replacing all peers, which resets every session. Once, after the last
        // round: in kernel WireGuard it removes every peer one RCU grace period at a
        // time, minutes for 100k under emulation.
        nb::DeviceUpdate u;
        u.replace_peers = true;
        u.peers.reserve(target.size());
        for (const auto& s : target) {
            nb::PeerUpdate op;
            op.public_key = s.wg.public_key;
            op.allowed_ips = s.wg.allowed_ips;
            op.endpoint = endpoint_of(s);
            op.persistent_keepalive = s.keepalive;
            u.peers.push_back(std::move(op));
        }
        timed(full_row, [&] { wg->set_device(u); });
    }

    print_table(rows);
    auto mib = [](long kib) { return static_cast<double>(kib) / 1024.0; };
    std::printf(
        "\nRSS: %.1f MiB with the bench's copy of the map built, %.1f MiB after install, %.1f "
        "MiB at the end (the bench also holds the second map)\n",
        mib(rss_map), mib(rss_install), mib(rss_kib()));
    std::fflush(stdout);

    mgr.reset();
    dp.reset();  // detaches the programs
    // Kernel WireGuard removes peers one RCU grace period at a time: deleting a device
    // with 100k peers takes minutes under emulation. A throwaway VM can skip it.
    if (!a.keep) nb::link_delete(ifname);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    auto usage = [] {
        std::fprintf(stderr,
                     "usage: lifecycle_bench --backend kernel|userspace --peers N [--wake K] "
                     "[--churn FRACTION] [--rounds R] [--keep]\n");
        return 2;
    };
    try {
        for (int i = 1; i < argc; ++i) {
            std::string opt = argv[i];
            if (opt == "--keep") {
                a.keep = true;
                continue;
            }
            if (i + 1 >= argc) {
                std::fprintf(stderr, "lifecycle_bench: %s needs a value\n", opt.c_str());
                return usage();
            }
            std::string v = argv[++i];
            if (opt == "--backend")
                a.backend = v;
            else if (opt == "--peers")
                a.peers = static_cast<uint32_t>(std::stoul(v));
            else if (opt == "--wake")
                a.wake = static_cast<uint32_t>(std::stoul(v));
            else if (opt == "--churn")
                a.churn = std::stod(v);
            else if (opt == "--rounds")
                a.rounds = static_cast<uint32_t>(std::stoul(v));
            else {
                std::fprintf(stderr, "lifecycle_bench: unknown option %s\n", opt.c_str());
                return usage();
            }
        }
    } catch (const std::exception&) {
        std::fprintf(stderr, "lifecycle_bench: option values must be numbers\n");
        return usage();
    }
    if (a.backend != "kernel" && a.backend != "userspace") {
        std::fprintf(stderr, "lifecycle_bench: --backend must be kernel or userspace\n");
        return usage();
    }
    // Keys and /32s encode the index in 24 bits plus an octet offset: stay well inside.
    if (a.peers < 4 || a.peers > 1000000) {
        std::fprintf(stderr, "lifecycle_bench: --peers must be 4..1000000\n");
        return usage();
    }
    if (a.wake < 2 || a.wake > a.peers) {
        std::fprintf(stderr, "lifecycle_bench: --wake must be 2..%u (the peer count)\n", a.peers);
        return usage();
    }
    // Removed and changed peers sit at i % stride == 0 and 1: the stride must be >= 2.
    const long churned = std::lround(a.peers * a.churn);
    if (!(a.churn >= 0 && a.churn < 0.5) || (churned && a.peers / churned < 2)) {
        std::fprintf(stderr,
                     "lifecycle_bench: --churn must be a fraction below 0.5 (%ld of %u peers "
                     "removed plus as many changed do not fit)\n",
                     churned, a.peers);
        return usage();
    }
    if (a.rounds < 1 || a.rounds > 100) {
        std::fprintf(stderr, "lifecycle_bench: --rounds must be 1..100\n");
        return usage();
    }
    spdlog::set_level(spdlog::level::warn);  // the one "N peers inactive" line per tick
    try {
        return run(a);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lifecycle_bench: %s\n", e.what());
        return 1;
    }
}
