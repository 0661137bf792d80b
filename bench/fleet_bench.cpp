// What the fleet costs a wake and a node, without a store in the way:
//  - the etcd connector (the directory, warm) against the static connector, one call of
//    each in turn, N calls: the time a wake spends in its connector;
//  - the directory's memory per node (heap in use before and after holding N records),
//    and the record's size in etcd;
//  - applying one watch batch of 1,000 changed records (the agent's share of a fan-out).
//
//   fleet_bench [--nodes N] [--calls N]
//
// No root and no etcd needed: the store's part is tests/integration/fleet.sh's and
// bench/fleet_fanout.sh's.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "agent/connector/connector.hpp"
#include "agent/fleet/node_directory.hpp"
#include "base/malloc_stats.hpp"
#include "bench/bench_util.hpp"

namespace {

using namespace nb;
using namespace nb::bench;

NodeRecord record(uint32_t i, uint32_t generation = 0) {
    NodeRecord n;
    n.public_key = key_for(i, 7);
    n.endpoints = {"198.51." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) +
                   ":" + std::to_string(51820 + generation)};
    n.allowed_ips = {host(64, i)};
    n.groups = {"g" + std::to_string(i % 16)};
    n.version = "0.1.0";
    return n;
}

std::vector<StoreEntry> entries(uint32_t nodes, uint32_t generation = 0, uint32_t first = 0) {
    std::vector<StoreEntry> out;
    out.reserve(nodes);
    for (uint32_t i = first; i < first + nodes; ++i) {
        NodeRecord n = record(i, generation);
        out.push_back({node_key("bench", n.public_key), encode_node(n), false});
    }
    return out;
}

double pct(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

void connector_times(uint32_t nodes, uint32_t calls) {
    auto dir = std::make_shared<NodeDirectory>("bench");
    dir->replace(entries(nodes), 1);
    auto fleet = make_connector("etcd", {std::chrono::seconds(5), dir});
    auto fixed = make_connector("static", {std::chrono::seconds(5)});
    std::vector<double> t_fleet, t_static;
    t_fleet.reserve(calls);
    t_static.reserve(calls);
    for (uint32_t c = 0; c < calls; ++c) {
        const uint32_t i = (c * 2654435761u) % nodes;  // scattered over the directory
        ConnectRequest r;
        r.peer = key_for(i, 7);
        r.interface = "wg0";
        r.configured_endpoint = record(i).endpoints.front();
        auto t0 = Clock::now();
        const bool ok_f = fleet->connect(r).endpoint.has_value();
        t_fleet.push_back(ms_since(t0) * 1000);
        t0 = Clock::now();
        const bool ok_s = fixed->connect(r).endpoint.has_value();
        t_static.push_back(ms_since(t0) * 1000);
        if (!ok_f || !ok_s) std::fprintf(stderr, "connect failed for node %u\n", i);
    }
    std::printf("connector, %u nodes, %u calls each (us)   p50     p99     max\n", nodes, calls);
    std::printf("  static                                %7.3f %7.3f %7.1f\n", pct(t_static, 0.5),
                pct(t_static, 0.99), pct(t_static, 1.0));
    std::printf("  etcd (directory, warm)                %7.3f %7.3f %7.1f\n", pct(t_fleet, 0.5),
                pct(t_fleet, 0.99), pct(t_fleet, 1.0));
    std::printf("  etcd - static                         %+7.3f %+7.3f\n",
                pct(t_fleet, 0.5) - pct(t_static, 0.5), pct(t_fleet, 0.99) - pct(t_static, 0.99));
}

void memory_per_node(uint32_t nodes) {
    std::vector<StoreEntry> in = entries(nodes);
    size_t value_bytes = 0;
    for (const StoreEntry& e : in) value_bytes += e.key.size() + e.value.size();
    malloc_trim(0);
    const size_t before = nb::malloc_stats().uordblks;
    auto dir = std::make_unique<NodeDirectory>("bench");
    dir->replace(in, 1);
    const size_t after = nb::malloc_stats().uordblks;
    std::printf(
        "directory of %u nodes: %.0f bytes of heap per node; %.0f bytes per node in etcd "
        "(key and value)\n",
        nodes, static_cast<double>(after - before) / nodes,
        static_cast<double>(value_bytes) / nodes);
}

void batch_apply(uint32_t nodes) {
    NodeDirectory dir("bench");
    dir.replace(entries(nodes), 1);
    // 1,000 nodes move at once (one watch batch), then 1,000 new ones join.
    std::vector<StoreEntry> moved = entries(1000, 1);
    std::vector<StoreEntry> joined = entries(1000, 0, nodes);
    auto t0 = Clock::now();
    DirectoryChange c = dir.apply(moved, 2);
    const double moved_ms = ms_since(t0);
    t0 = Clock::now();
    DirectoryChange j = dir.apply(joined, 3);
    const double joined_ms = ms_since(t0);
    std::printf(
        "a batch of 1,000 records into %u nodes: moved %.2f ms (%zu moves), joined %.2f ms "
        "(map changed: %s)\n",
        nodes, moved_ms, c.moved.size(), joined_ms, j.map_changed ? "yes" : "no");
}

}  // namespace

int main(int argc, char** argv) {
    uint32_t nodes = 10000, calls = 100000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--nodes"))
            nodes = static_cast<uint32_t>(std::stoul(argv[i + 1]));
        if (!std::strcmp(argv[i], "--calls"))
            calls = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    }
    connector_times(nodes, calls);
    memory_per_node(nodes);
    batch_apply(nodes);
    return 0;
}
