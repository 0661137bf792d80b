// A load generator for the fleet benches: N node records of a mesh written to etcd as
// fast as T threads can, each bound to one lease (kept alive while it waits), as N
// agents registering at once would write them.
//
//   fleet_load --endpoints URL[,URL...] --mesh M --nodes N [--threads T] [--first I]
//              [--generation G] [--hold SECONDS]
//
// Prints when the first and the last put went out (unix ms) and the store's revision
// after the last, so a caller can wait for agents to reach it. --generation changes
// every record's endpoint port (a fleet-wide move); --hold keeps the lease alive that long
// afterwards, then revokes it (0: the records stay until the lease's 60 s TTL runs out).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "agent/etcd/etcd_client.hpp"
#include "agent/fleet/node_record.hpp"
#include "base/time.hpp"
#include "bench/bench_util.hpp"

namespace {

using namespace nb;

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        const size_t comma = s.find(',', start);
        out.push_back(
            s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) break;
        start = comma + 1;
    }
    return out;
}

NodeRecord record(uint32_t i, uint32_t generation) {
    NodeRecord n;
    n.public_key = bench::key_for(i, 9);
    n.endpoints = {"198.51." + std::to_string((i >> 8) & 255) + "." + std::to_string(i & 255) +
                   ":" + std::to_string(40000 + generation)};
    n.allowed_ips = {bench::host(128, i)};
    n.version = "load";
    return n;
}

}  // namespace

int main(int argc, char** argv) {
    std::string endpoints, mesh = "default";
    uint32_t nodes = 1000, threads = 8, first = 0, generation = 0, hold = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i], v = argv[i + 1];
        if (a == "--endpoints")
            endpoints = v;
        else if (a == "--mesh")
            mesh = v;
        else if (a == "--nodes")
            nodes = static_cast<uint32_t>(std::stoul(v));
        else if (a == "--threads")
            threads = static_cast<uint32_t>(std::stoul(v));
        else if (a == "--first")
            first = static_cast<uint32_t>(std::stoul(v));
        else if (a == "--generation")
            generation = static_cast<uint32_t>(std::stoul(v));
        else if (a == "--hold")
            hold = static_cast<uint32_t>(std::stoul(v));
        else {
            std::fprintf(stderr, "fleet_load: unknown option %s\n", a.c_str());
            return 2;
        }
    }
    if (endpoints.empty()) {
        std::fprintf(stderr, "fleet_load: --endpoints is required\n");
        return 2;
    }
    EtcdOptions o;
    o.endpoints = split(endpoints);
    EtcdClient client(o);
    const int64_t lease = client.lease_grant(60).id;
    std::atomic<uint32_t> next{0};
    std::atomic<int64_t> last_revision{0};
    std::atomic<bool> failed{false};
    const int64_t t_first = unix_ms();
    std::vector<std::thread> pool;
    for (uint32_t t = 0; t < threads; ++t)
        pool.emplace_back([&] {
            for (uint32_t k; (k = next++) < nodes;) {
                const NodeRecord n = record(first + k, generation);
                try {
                    const int64_t rev =
                        client.put(node_key(mesh, n.public_key), encode_node(n), lease);
                    for (int64_t seen = last_revision;
                         rev > seen && !last_revision.compare_exchange_weak(seen, rev);) {
                    }
                } catch (const std::exception& e) {
                    std::fprintf(stderr, "fleet_load: %s\n", e.what());
                    failed = true;
                    return;
                }
            }
        });
    for (auto& t : pool) t.join();
    const int64_t t_last = unix_ms();
    std::printf("first_put_ms %lld last_put_ms %lld revision %lld requests %llu\n",
                static_cast<long long>(t_first), static_cast<long long>(t_last),
                static_cast<long long>(last_revision.load()),
                static_cast<unsigned long long>(client.requests()));
    std::fflush(stdout);
    for (uint32_t s = 0; s < hold; ++s) {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        if (s % 10 == 9) client.lease_keepalive_once(lease);
    }
    if (hold) client.lease_revoke(lease);
    return failed ? 1 : 0;
}
