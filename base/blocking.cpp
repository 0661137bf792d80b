#include "base/blocking.hpp"

#include <array>

#include "base/enum_names.hpp"
#include "base/time.hpp"

namespace nb {

namespace {

constexpr EnumName<BlockingKind> kKindNames[] = {
    {BlockingKind::WgUapi, "wg-uapi"},
    {BlockingKind::WgNetlink, "wg-netlink"},
    {BlockingKind::Rtnetlink, "rtnetlink"},
    {BlockingKind::Connector, "connector"},
    {BlockingKind::Dns, "dns"},
    {BlockingKind::ControlClient, "control-client"},
    {BlockingKind::StateFile, "state-file"},
};
static_assert(std::size(kKindNames) == kBlockingKinds);

// Constant-initialized (no constructor runs), so a wait timed during another static
// object's construction or destruction finds it there.
constinit std::array<AtomicLatencyHistogram, kBlockingKinds> g_waits;

constinit thread_local bool t_off_loop = false;

}  // namespace

const char* to_string(BlockingKind kind) {
    return name_of(kKindNames, kind, "unknown");
}

void record_blocking(BlockingKind kind, uint64_t ns) {
    const auto i = static_cast<size_t>(kind);
    if (i < kBlockingKinds) g_waits[i].record(ns);
}

void mark_thread_off_loop() {
    t_off_loop = true;
}

bool thread_is_off_loop() {
    return t_off_loop;
}

BlockingTimer::BlockingTimer(BlockingKind kind)
    : kind_(kind), start_ns_(t_off_loop ? 0 : monotonic_ns()) {}

BlockingTimer::~BlockingTimer() {
    if (start_ns_) record_blocking(kind_, monotonic_ns() - start_ns_);
}

std::vector<BlockingStats> blocking_snapshot() {
    std::vector<BlockingStats> out;
    out.reserve(kBlockingKinds);
    for (const auto& n : kKindNames)
        out.push_back({n.value, g_waits[static_cast<size_t>(n.value)].snapshot()});
    return out;
}

std::string render_blocking(const std::vector<BlockingStats>& stats) {
    std::string out;
    for (const auto& s : stats)
        out += render_histogram(std::string("blocking ") + to_string(s.kind), s.waits) + "\n";
    return out;
}

}  // namespace nb
