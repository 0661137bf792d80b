// Fuzzes the reading of etcd's gateway replies (agent/etcd/gateway_json.*): any body a
// member, or whatever answers at its address, sends to a range, and any line of a watch
// stream. Nothing but EtcdError escapes; what is accepted holds bytes that survive base64
// both ways, and a range never has more keys than its reply listed. base64_decode
// accepts only text of the right length and alphabet.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/etcd/base64.hpp"
#include "agent/etcd/gateway_json.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

void check_bytes(const std::string& b) {
    NB_FUZZ_CHECK(nb::etcd::base64_decode(nb::etcd::base64_encode(b)) == b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    using namespace nb;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const etcd::WatchResponse w = etcd::decode_watch_line(text);
        for (const EtcdEvent& e : w.events) {
            check_bytes(e.kv.key);
            check_bytes(e.kv.value);
        }
    } catch (const EtcdError&) {
    }
    try {
        const etcd::Json j = etcd::parse_reply(text, "fuzz");
        (void)etcd::gateway_error(j);
        const EtcdRangeResult r = etcd::decode_range(j);
        NB_FUZZ_CHECK(r.kvs.empty() || r.kvs.size() == j["kvs"].size());
        for (const EtcdKeyValue& kv : r.kvs) check_bytes(kv.key);
    } catch (const EtcdError&) {
    }
    if (auto b = etcd::base64_decode(text)) {
        NB_FUZZ_CHECK(size % 4 == 0);
        NB_FUZZ_CHECK(b->size() <= size / 4 * 3);
        check_bytes(*b);
    }
    return 0;
}
