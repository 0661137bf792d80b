// Installing many peers through a WireGuard backend, timed: what the agent pays at start
// (and on big network-map changes).
//
//   wg_install_bench --backend kernel|userspace [--no-key] [--keep] --peers N [--peers N ...]
//
// Run as root in a throwaway network namespace (`ip netns exec`): it creates and deletes
// its own interface there. Prints one line per count: set time, dump time, peers/s.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/net/rtnl.hpp"
#include "bench/bench_util.hpp"

namespace {

using namespace nb::bench;

int run(const std::string& backend, uint32_t peers, bool with_key, bool keep) {
    static int runs = 0;  // --keep leaves earlier interfaces in place
    const std::string ifname =
        "nbb" + std::to_string(getpid() % 100000) + "-" + std::to_string(runs++);
    std::unique_ptr<nb::WgControl> wg = create_interface(backend, ifname);
    nb::DeviceUpdate u;
    // With a device key the kernel precomputes a shared secret per new peer (X25519):
    // that is crypto, not the control path, and under emulation it dominates.
    if (with_key) u.private_key = key_for(0xffffffff, 7);
    u.listen_port = 51999;
    u.replace_peers = true;
    u.peers.reserve(peers);
    for (uint32_t i = 0; i < peers; ++i) {
        nb::PeerUpdate p;
        p.public_key = key_for(i, 1);
        nb::IpAddr a;
        a.family = AF_INET;
        a.bytes = {10, static_cast<uint8_t>(64 + (i >> 16)), static_cast<uint8_t>(i >> 8),
                   static_cast<uint8_t>(i)};
        p.allowed_ips.push_back({a, 32});
        p.persistent_keepalive = 0;
        u.peers.push_back(std::move(p));
    }
    auto t0 = Clock::now();
    wg->set_device(u);
    double set_ms = ms_since(t0);
    t0 = Clock::now();
    nb::WgDevice d = wg->get_device();
    double get_ms = ms_since(t0);
    if (d.peers.size() != peers) {
        std::fprintf(stderr, "installed %u peers but the dump has %zu\n", peers, d.peers.size());
        return 1;
    }
    std::printf("%s %u peers%s: set %.0f ms (%.0f peers/s), dump %.0f ms\n", backend.c_str(), peers,
                with_key ? "" : " (no device key)", set_ms, peers / (set_ms / 1000.0), get_ms);
    std::fflush(stdout);
    // Kernel WireGuard removes peers one RCU grace period at a time: deleting a device
    // with 100k peers takes minutes under emulation. A throwaway VM can skip it.
    if (!keep) nb::link_delete(ifname);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string backend;
    std::vector<uint32_t> counts;
    bool with_key = true;
    bool keep = false;  // leave the interface (and its peers) behind
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--no-key") {
            with_key = false;
            continue;
        }
        if (a == "--keep") {
            keep = true;
            continue;
        }
        if (i + 1 >= argc) break;
        ++i;
        if (a == "--backend")
            backend = argv[i];
        else if (a == "--peers")
            counts.push_back(static_cast<uint32_t>(std::stoul(argv[i])));
    }
    if ((backend != "kernel" && backend != "userspace") || counts.empty()) {
        std::fprintf(stderr,
                     "usage: wg_install_bench --backend kernel|userspace [--no-key] [--keep] "
                     "--peers N...\n");
        return 2;
    }
    try {
        for (uint32_t n : counts)
            if (int rc = run(backend, n, with_key, keep)) return rc;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wg_install_bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
