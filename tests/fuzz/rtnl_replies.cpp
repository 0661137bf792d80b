// Fuzzes the rtnetlink reply decoders (base/net/rtnl_reply.*): the checks every reply
// datagram goes through, and the link-kind and address messages the agent reads. The
// input is a run of datagrams (tests/support/fuzz_seed.hpp's framing), fed until the
// reply ends, as RtnlSocket feeds them. A failed reply carries a positive errno; a
// malformed message throws NetlinkError "rtnetlink: <what>: ..." with error code 0, through
// libmnl's callbacks; what is decoded is a valid link kind or address.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <linux/rtnetlink.h>

#include "base/net/rtnl_reply.hpp"
#include "tests/fuzz/fuzz_check.hpp"
#include "tests/support/fuzz_seed.hpp"

namespace {

// The values tests/base/net/rtnl_reply_test.cpp builds its replies with.
constexpr uint32_t kSeq = 4242;
constexpr uint32_t kPort = 777;
constexpr int kIndex = 5;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    // As link_kind() and addr_list() read their replies: any other message in an address
    // dump is malformed, and the exception crosses libmnl.
    auto on_data = [](const nlmsghdr* nlh) {
        if (nlh->nlmsg_type == RTM_NEWLINK) {
            if (auto kind = decode_link_kind(nlh, "fuzzing"))
                NB_FUZZ_CHECK(std::memchr(kind->data(), '\0', kind->size()) == nullptr);
            return;
        }
        if (auto a = decode_addr_message(nlh, kIndex, "fuzzing"))
            NB_FUZZ_CHECK(fuzz::valid_prefix(*a));
    };
    try {
        for (auto d : test::split_datagrams({data, size})) {
            RtnlReplyStatus st = decode_rtnl_reply(d, kSeq, kPort, on_data);
            if (st.state == RtnlReplyStatus::State::More) continue;
            if (st.state == RtnlReplyStatus::State::Failed)
                NB_FUZZ_CHECK_MSG(st.error > 0, "error " + std::to_string(st.error));
            break;
        }
    } catch (const NetlinkError& e) {
        NB_FUZZ_CHECK(e.error_code == 0);
        NB_FUZZ_CHECK_MSG(std::string_view(e.what()).starts_with("rtnetlink: fuzzing: "), e.what());
    }
    return 0;
}
