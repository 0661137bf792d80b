// Per-packet cost of the tc programs, through BPF_PROG_TEST_RUN, against an empty tc
// program in the same run; and the kernel memory of the maps at each size.
//
//   prog_cost_bench [--sizes 1000,100000,1000000] [--repeat N] [--batches N]
//
// Needs root (bpf()). For each size it loads the programs with maps of that many peers
// (each a /32 route, Connected) plus one routed /24 per 10 peers, once with the /32s in
// the dense IPv4 array (as the agent sets it up for dense overlay addresses) and once in
// the hash map (addresses too sparse for the array, and IPv6). It runs, interleaved,
// `batches` batches of `repeat` runs of each case; the kernel reports each batch's mean
// time per run. Prints p50/p99 over the batches and the difference to the empty program.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/net/ip.hpp"
#include "loader/datapath.hpp"
#include "loader/test_run_opts.hpp"
#include "tests/support/frames.hpp"

namespace {

using nb::IpAddr;
using nb::IpPrefix;

// Peer i's /32 is 10.0.0.0 + i + 1; routed subnet j is 11.0.0.0 + j*256, a /24.
IpAddr host_of(uint32_t i) {
    return IpAddr::v4(0x0a000000u + i + 1);
}
IpPrefix subnet_of(uint32_t j) {
    return IpPrefix{IpAddr::v4(0x0b000000u + (j << 8)), 24};
}

// The baseline: a tc program that returns "next" and does nothing else.
int load_empty_program() {
    const bpf_insn insns[] = {
        {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, TC_ACT_UNSPEC},
        {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
    };
    int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "nb_empty", "GPL", insns, 2, nullptr);
    if (fd < 0)
        throw std::runtime_error(std::string("loading the empty program: ") + std::strerror(errno));
    return fd;
}

// Mean ns per run over `repeat` runs, as the kernel measured it.
double run_batch(int prog_fd, const std::vector<uint8_t>& frame, uint32_t repeat, int expect) {
    auto o = nb::test_run_opts(frame, static_cast<int>(repeat));
    if (bpf_prog_test_run_opts(prog_fd, &o) != 0)
        throw std::runtime_error(std::string("BPF_PROG_TEST_RUN: ") + std::strerror(errno));
    if (static_cast<int>(o.retval) != expect)
        throw std::runtime_error("unexpected verdict " +
                                 std::to_string(static_cast<int>(o.retval)) + " (expected " +
                                 std::to_string(expect) + ")");
    // The kernel reports the mean over the repeats in whole ns; the total keeps precision.
    return static_cast<double>(o.duration);
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    size_t i = static_cast<size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

struct Case {
    const char* name;
    int prog_fd;
    std::vector<uint8_t> frame;
    int verdict;
    std::vector<double> ns;
};

void bench_size(uint32_t peers, bool dense, uint32_t repeat, uint32_t batches, int empty_fd) {
    const uint32_t subnets = std::max<uint32_t>(1, peers / 10);
    nb::DatapathOptions o;
    o.max_peers = peers;
    o.max_routes = peers;
    o.l2_len = 14;  // the test runner always passes an Ethernet frame
    if (dense) {
        // What the agent picks for these peers' /32s.
        nb::V4HostBounds hosts;
        for (uint32_t i = 0; i < peers; ++i) hosts.add(host_of(i).v4_value());
        nb::Dense4Range r = nb::dense4_range_for(hosts, peers);
        o.dense4_base = r.base;
        o.dense4_size = r.size;
    }
    nb::Datapath dp(o);
    for (uint32_t i = 0; i < peers; ++i) {
        dp.reset_slot(i, NB_SLOT_PASS);
        dp.add_route(IpPrefix{host_of(i), 32}, i);
    }
    const auto before = dp.map_memory();                            // before the trie grows
    const size_t host_bytes = before[0].second + before[5].second;  // hash + dense array
    for (uint32_t j = 0; j < subnets; ++j) dp.add_route(subnet_of(j), j % peers);

    const IpAddr self = *IpAddr::parse("10.255.255.254");
    std::vector<Case> cases;
    cases.push_back({"empty tc program",
                     empty_fd,
                     nb::test::udp_frame(self, host_of(peers / 2)),
                     TC_ACT_UNSPEC,
                     {}});
    cases.push_back({"connected peer, /32 hit",
                     dp.egress_fd(),
                     nb::test::udp_frame(self, host_of(peers / 2)),
                     TC_ACT_UNSPEC,
                     {}});
    IpAddr in_subnet = subnet_of(subnets / 2).addr;
    in_subnet.bytes[3] = 7;
    cases.push_back({"connected peer, prefix hit",
                     dp.egress_fd(),
                     nb::test::udp_frame(self, in_subnet),
                     TC_ACT_UNSPEC,
                     {}});
    cases.push_back({"non-peer miss",
                     dp.egress_fd(),
                     nb::test::udp_frame(self, *IpAddr::parse("192.0.2.1")),
                     TC_ACT_UNSPEC,
                     {}});
    cases.push_back({"ingress, /32 hit",
                     dp.ingress_fd(),
                     nb::test::udp_frame(host_of(peers / 3), self),
                     TC_ACT_UNSPEC,
                     {}});

    for (auto& c : cases) run_batch(c.prog_fd, c.frame, repeat, c.verdict);  // warm up
    for (uint32_t b = 0; b < batches; ++b)
        for (auto& c : cases) c.ns.push_back(run_batch(c.prog_fd, c.frame, repeat, c.verdict));

    const double base50 = percentile(cases[0].ns, 0.5), base99 = percentile(cases[0].ns, 0.99);
    std::printf("\n%u peers (%u routed /24s), IPv4 host routes in %s, %u batches x %u runs:\n",
                peers, subnets, dense ? "the dense array" : "the hash map", batches, repeat);
    std::printf("| case                         | p50 ns | p99 ns | p50 - empty | p99 - empty |\n");
    std::printf("|------------------------------|--------|--------|-------------|-------------|\n");
    for (const auto& c : cases) {
        double p50 = percentile(c.ns, 0.5), p99 = percentile(c.ns, 0.99);
        if (c.prog_fd == empty_fd)
            std::printf("| %-28s | %6.0f | %6.0f |             |             |\n", c.name, p50,
                        p99);
        else
            std::printf("| %-28s | %6.0f | %6.0f | %+11.0f | %+11.0f |\n", c.name, p50, p99,
                        p50 - base50, p99 - base99);
    }
    uint64_t total = 0;
    std::printf("map memory (fdinfo memlock):");
    for (const auto& [name, bytes] : dp.map_memory()) {
        std::printf(" %s %.1f MiB,", name.c_str(), static_cast<double>(bytes) / 1048576.0);
        total += bytes;
    }
    const auto mem = dp.map_memory();
    std::printf(
        "\n  per peer: host routes %.0f B, slot %.0f B, all maps %.0f B"
        " (prefix trie %.0f B per /24)\n",
        static_cast<double>(host_bytes) / peers, static_cast<double>(mem[2].second) / peers,
        static_cast<double>(total) / peers, static_cast<double>(mem[1].second) / subnets);
    // One line for scripts (bench/run.sh).
    std::printf("RESULT peers=%u dense=%d", peers, dense ? 1 : 0);
    for (const auto& c : cases) {
        std::string key = c.name;
        for (char& ch : key)
            if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        std::printf(" %s_p50=%.0f %s_p99=%.0f", key.c_str(), percentile(c.ns, 0.5), key.c_str(),
                    percentile(c.ns, 0.99));
    }
    std::printf(" map_bytes=%llu\n", static_cast<unsigned long long>(total));
}

std::vector<uint32_t> parse_sizes(const std::string& s) {
    std::vector<uint32_t> out;
    size_t pos = 0;
    while (pos <= s.size()) {
        size_t comma = s.find(',', pos);
        std::string item =
            s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
        char* end = nullptr;
        unsigned long v = std::strtoul(item.c_str(), &end, 10);
        if (item.empty() || *end || v == 0 || v > 16u << 20)
            throw std::invalid_argument("--sizes: '" + item +
                                        "' is not a peer count in 1..16777216");
        out.push_back(static_cast<uint32_t>(v));
        if (comma == std::string::npos) break;
        pos = comma + 1;
    }
    return out;
}

uint32_t parse_count(const char* flag, const char* v) {
    char* end = nullptr;
    unsigned long n = std::strtoul(v, &end, 10);
    if (!*v || *end || n == 0 || n > 100000000)
        throw std::invalid_argument(std::string(flag) + ": '" + v + "' is not a positive count");
    return static_cast<uint32_t>(n);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        std::vector<uint32_t> sizes = {1000, 100000, 1000000};
        uint32_t repeat = 200000, batches = 30;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value (or is unknown)");
            if (a == "--sizes")
                sizes = parse_sizes(argv[++i]);
            else if (a == "--repeat")
                repeat = parse_count("--repeat", argv[++i]);
            else if (a == "--batches")
                batches = parse_count("--batches", argv[++i]);
            else
                throw std::invalid_argument("unknown option " + a);
        }
        if (geteuid() != 0) throw std::runtime_error("needs root (bpf())");
        int empty_fd = load_empty_program();
        for (uint32_t n : sizes)
            for (bool dense : {true, false}) bench_size(n, dense, repeat, batches, empty_fd);
        close(empty_fd);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "prog_cost_bench: %s\n", e.what());
        return 1;
    }
}
