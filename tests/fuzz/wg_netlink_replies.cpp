// Fuzzes the kernel WireGuard generic-netlink decoders (agent/wg/netlink_control.*): the
// WG_CMD_GET_DEVICE dump (GetDeviceDecoder), the family reply and the ack. The input is
// a run of datagrams (tests/support/fuzz_seed.hpp's framing); the dump decoder takes
// them all, the other two the first. Each decodes or throws WgError "kernel WireGuard...";
// a decoded device keeps the decoder's promises.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string_view>

#include "agent/wg/netlink_control.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/support/fuzz_seed.hpp"

namespace nb {
namespace {

// The values tests/wg/netlink_codec_test.cpp builds its replies with, so the seeds it
// writes pass the sequence and port checks.
constexpr uint16_t kFamily = 0x1d;
constexpr uint32_t kSeq = 4242;
constexpr uint32_t kPort = 777;

void check_error(const WgError& e) {
    NB_FUZZ_CHECK_MSG(std::string_view(e.what()).starts_with("kernel WireGuard"), e.what());
}

void check_promises(const WgDevice& d) {
    std::set<WgKey> keys;
    for (const WgPeer& p : d.peers) {
        NB_FUZZ_CHECK(keys.insert(p.public_key).second);  // continuations are merged
        NB_FUZZ_CHECK(!p.preshared_key || !p.preshared_key->is_zero());
        if (p.endpoint) {
            int fam = p.endpoint->family();
            NB_FUZZ_CHECK((fam == AF_INET && p.endpoint->len == sizeof(sockaddr_in)) ||
                          (fam == AF_INET6 && p.endpoint->len == sizeof(sockaddr_in6)));
        }
        for (const IpPrefix& ip : p.allowed_ips) NB_FUZZ_CHECK(fuzz::normalized(ip));
    }
}

}  // namespace
}  // namespace nb

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    auto datagrams = test::split_datagrams({data, size});

    GetDeviceDecoder dump(kFamily, kSeq, kPort);
    try {
        for (auto d : datagrams)
            if (dump.feed(d)) break;
        if (dump.done() && !dump.interrupted()) check_promises(dump.take());
    } catch (const WgError& e) {
        check_error(e);
    }
    if (datagrams.empty()) return 0;
    try {
        if (auto id = decode_family_reply(datagrams[0], kSeq, kPort)) NB_FUZZ_CHECK(*id != 0);
    } catch (const WgError& e) {
        check_error(e);
    }
    try {
        decode_ack(datagrams[0], kSeq, kPort, "fuzzing");
    } catch (const WgError& e) {
        check_error(e);
    }
    return 0;
}
