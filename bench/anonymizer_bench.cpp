// The debug bundle's anonymizer on the largest file a bundle holds: `status -d --json` of
// N peers (about 30 MB at 100k), as the agent writes it, and an NDJSON log of the same
// size made of lines that each carry a key, an endpoint and a time.
//
//   anonymizer_bench [--peers N] [--runs N]
//
// Prints the size, the best and median time of each, and the throughput. No root needed.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "agent/control/protocol.hpp"
#include "agent/debug/anonymizer.hpp"
#include "bench/bench_util.hpp"

namespace {

using namespace nb;
using namespace nb::bench;

std::string status_json(uint32_t peers) {
    AgentStatus s;
    s.interface = "wg0";
    s.wg_backend = nb::WgBackend::Kernel;
    s.trigger = nb::TriggerEngine::Bpf;
    s.idle = peers;
    uint32_t next = 0;
    PeerStatus p;
    return status_reply_text(s, peers, [&](PeerStatus& out) {
        if (next == peers) return false;
        const uint32_t i = next++;
        out = p;
        out.public_key = key_for(i, 1).base64();
        out.allowed_ips = {host(64, i).str(), "fd00:64::" + std::to_string(i) + "/128"};
        out.endpoint =
            "192.0.2." + std::to_string(i % 250 + 1) + ":" + std::to_string(51820 + i % 1000);
        out.last_activity_ms = 1733333333333 + i;
        out.wakes = i % 7;
        out.last_wake_ms = i % 3 ? 12.5 : -1;
        out.groups = {"group-" + std::to_string(i % 10)};
        return true;
    });
}

std::string ndjson_log(size_t bytes) {
    std::string log;
    for (uint32_t i = 0; log.size() < bytes; ++i) {
        log += "{\"time\":\"2026-12-04T19:22:47.123Z\",\"level\":\"info\",\"msg\":\"peer ";
        log += key_for(i, 2).base64();
        log += " woke\\tendpoint 203.0.113.";
        log += std::to_string(i % 250 + 1);
        log += ":51820 after 12.5 ms\",\"v\":\"0.1.0\"}\n";
    }
    return log;
}

void time_it(const char* what, const std::string& text, int runs) {
    std::vector<double> ms;
    size_t out_size = 0, mapped = 0;
    for (int r = 0; r < runs; ++r) {
        Anonymizer an;
        const auto t0 = Clock::now();
        const std::string out = an.text(text);
        ms.push_back(ms_since(t0));
        out_size = out.size();
        mapped = an.mapped();
    }
    std::sort(ms.begin(), ms.end());
    std::printf(
        "%-8s %7.1f MB -> %7.1f MB, %7zu mapped: best %7.1f ms, median %7.1f ms, %6.0f MB/s\n",
        what, static_cast<double>(text.size()) / 1e6, static_cast<double>(out_size) / 1e6, mapped,
        ms.front(), ms[ms.size() / 2], static_cast<double>(text.size()) / 1e3 / ms[ms.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    uint32_t peers = 100000;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--peers"))
            peers = static_cast<uint32_t>(std::stoul(argv[i + 1]));
        if (!std::strcmp(argv[i], "--runs")) runs = std::max(1, std::stoi(argv[i + 1]));
    }
    const std::string status = status_json(peers);
    time_it("status", status, runs);
    time_it("ndjson", ndjson_log(status.size()), runs);
    return 0;
}
