#include "loader/datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "base/errno_text.hpp"
#include "lazy_peer.skel.h"
#include "loader/bpf_report.hpp"
#include "loader/test_run_opts.hpp"

namespace nb {

namespace {

uint32_t round_up_pow2(uint32_t v) {
    uint32_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

}  // namespace

nb_host_key host_key(const IpAddr& a) {
    nb_host_key k{};
    k.family = a.family == AF_INET ? NB_AF_INET : NB_AF_INET6;
    std::memcpy(k.addr, a.bytes.data(), a.family == AF_INET ? 4 : 16);
    return k;
}

nb_lpm_key lpm_key(const IpPrefix& p) {
    nb_lpm_key k{};
    k.prefixlen = 8u + p.len;
    k.family = p.addr.family == AF_INET ? NB_AF_INET : NB_AF_INET6;
    std::memcpy(k.addr, p.addr.bytes.data(), p.addr.family == AF_INET ? 4 : 16);
    return k;
}

Datapath::Datapath(const DatapathOptions& opts) : opts_(opts) {
    if (opts_.max_peers == 0 || opts_.max_routes == 0)
        throw DatapathError("max_peers and max_routes must be positive");
    if (opts_.dense4_size && uint64_t{opts_.dense4_base} + opts_.dense4_size > (1ull << 32))
        throw DatapathError("the dense IPv4 range runs past 255.255.255.255");
    skel_ = lazy_peer__open();
    if (!skel_) throw DatapathError("opening BPF object: " + errno_text(errno));
    try {
        load();
    } catch (...) {
        if (dense4_) munmap(dense4_, dense4_len_);
        if (slots_) munmap(slots_, slots_len_);
        lazy_peer__destroy(skel_);
        throw;
    }
}

void Datapath::load() {
    skel_->rodata->nb_l2_len = opts_.l2_len;
    skel_->rodata->nb_max_held = opts_.max_held;
    skel_->rodata->nb_dense4_base = opts_.dense4_base;
    skel_->rodata->nb_dense4_size = opts_.dense4_size;
    // The ring buffer size must be a power-of-two number of pages.
    uint32_t rb = round_up_pow2(std::max<uint32_t>(opts_.ringbuf_bytes, getpagesize()));
    opts_.ringbuf_bytes = rb;
    int err = bpf_map__set_max_entries(skel_->maps.nb_events, rb);
    if (!err) err = bpf_map__set_max_entries(skel_->maps.nb_slots, opts_.max_peers);
    if (!err) err = bpf_map__set_max_entries(skel_->maps.nb_hosts, opts_.max_routes);
    if (!err) err = bpf_map__set_max_entries(skel_->maps.nb_prefixes, opts_.max_routes);
    if (!err)
        err = bpf_map__set_max_entries(skel_->maps.nb_dense4, std::max(1u, opts_.dense4_size));
    // One staging entry per CPU the program can run on (bpf/lib/maps.h).
    const int cpus = libbpf_num_possible_cpus();
    if (cpus < 0) throw DatapathError("counting possible CPUs: " + errno_text(cpus));
    if (!err)
        err = bpf_map__set_max_entries(skel_->maps.nb_scratch_map, static_cast<uint32_t>(cpus));
    if (err) throw DatapathError("sizing BPF maps: " + errno_text(err));
    err = lazy_peer__load(skel_);
    if (err)
        throw DatapathError("loading BPF programs: " + errno_text(err) +
                            " (needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN, or CAP_SYS_ADMIN "
                            "before 5.8, and a kernel with ring buffer support)");
    auto map_shared = [](int fd, size_t bytes, size_t& len, const char* what) {
        size_t page = getpagesize();
        len = (bytes + page - 1) / page * page;
        void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED)
            throw DatapathError(std::string("mapping ") + what + ": " + errno_text(errno));
        return m;
    };
    slots_ = static_cast<nb_peer_slot*>(map_shared(bpf_map__fd(skel_->maps.nb_slots),
                                                   sizeof(nb_peer_slot) * opts_.max_peers,
                                                   slots_len_, "peer slots"));
    dense4_ = static_cast<uint64_t*>(map_shared(bpf_map__fd(skel_->maps.nb_dense4),
                                                sizeof(uint64_t) * std::max(1u, opts_.dense4_size),
                                                dense4_len_, "the dense IPv4 routes"));
    calibrate_clock();
}

Datapath::~Datapath() {
    attachment_.reset();
    if (dense4_) munmap(dense4_, dense4_len_);
    if (slots_) munmap(slots_, slots_len_);
    lazy_peer__destroy(skel_);
}

std::pair<uint64_t, uint64_t> Datapath::clock_sample() const {
    // Any frame will do: the program only reads the clocks.
    uint8_t frame[64] = {};
    auto o = test_run_opts(frame);
    if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.nb_clock), &o) != 0)
        throw DatapathError("running the clock program: " + errno_text(errno));
    return {skel_->bss->nb_clock_jiffies, skel_->bss->nb_clock_ns};
}

void Datapath::calibrate_clock() {
    // Edges until the fit is sure (jiffy_clock.hpp): 100 ms on a quiet machine, up to 1 s
    // where ticks come late (a busy or emulated one measured 5.8 ms for a 4 ms jiffy).
    constexpr uint64_t kGiveUpNs = 3'000'000'000;
    const uint64_t start = clock_sample().second;
    // The first sample after jiffies moved past `j`.
    auto next_edge = [&](uint64_t j) {
        for (;;) {
            auto [jiffies, ns] = clock_sample();
            if (jiffies != j) return JiffyEdge{jiffies, ns};
            if (ns - start > kGiveUpNs) throw DatapathError("jiffies did not advance in 3 s");
        }
    };
    std::vector<JiffyEdge> edges{next_edge(clock_sample().first)};
    do {
        edges.push_back(next_edge(edges.back().jiffies));
    } while (!jiffy_edges_enough(edges));
    clock_ = fit_jiffy_clock(edges);
}

uint64_t Datapath::jiffies_to_ns(uint64_t jiffies) const {
    return clock_.to_ns(jiffies);
}

Dense4Range dense4_range_for(const V4HostBounds& v4_hosts, uint32_t capacity) {
    Dense4Range r;
    if (v4_hosts.count == 0) return r;
    const uint32_t lo = v4_hosts.lo, hi = v4_hosts.hi;
    // Whole /24s, and a quarter more above for peers added later (addresses are usually
    // handed out upwards); beyond the range, routes go to the hash map as before.
    uint64_t base = lo & ~0xffu;
    uint64_t span = (uint64_t{hi} | 0xffu) - base + 1;
    uint64_t size = std::min<uint64_t>(span + span / 4, (1ull << 32) - base);
    // 8 bytes per address: worth it while the range is at most 8 addresses per peer
    // (64 bytes, less than a hash entry) or 1 MiB in all, and never over 128 MiB.
    uint64_t worth =
        std::max<uint64_t>(8ull * std::max<uint64_t>(capacity, v4_hosts.count), 1ull << 17);
    if (size > worth || size > (16ull << 20)) return r;
    r.base = static_cast<uint32_t>(base);
    r.size = static_cast<uint32_t>(size);
    return r;
}

void Datapath::attach(int ifindex, AttachMode mode) {
    attachment_.reset();
    attachment_ = std::make_unique<TcAttachment>(ifindex, ingress_fd(), egress_fd(), mode);
}

void Datapath::detach() {
    attachment_.reset();
}

AttachMode Datapath::attach_mode() const {
    return attachment_ ? attachment_->mode() : AttachMode::Auto;
}

TcOrder Datapath::tc_order() const {
    if (attachment_) return attachment_->order();
    TcOrder o;
    o.error = "not attached";
    return o;
}

namespace {

// Offset of a host route in the dense IPv4 range, if it falls in it.
std::optional<uint32_t> dense4_offset(const DatapathOptions& o, const IpPrefix& p) {
    if (!o.dense4_size || p.addr.family != AF_INET || !p.is_host()) return std::nullopt;
    uint32_t off = p.addr.v4_value() - o.dense4_base;
    if (off >= o.dense4_size) return std::nullopt;
    return off;
}

}  // namespace

void Datapath::add_route(const IpPrefix& p, uint32_t peer_id) {
    if (peer_id >= opts_.max_peers) throw DatapathError("peer id beyond the slot map");
    if (auto off = dense4_offset(opts_, p)) {
        __atomic_store_n(&dense4_[*off], uint64_t{peer_id} + 1, __ATOMIC_RELEASE);
        return;
    }
    int err;
    if (p.is_host()) {
        nb_host_key k = host_key(p.addr);
        err = bpf_map_update_elem(bpf_map__fd(skel_->maps.nb_hosts), &k, &peer_id, BPF_ANY);
    } else {
        nb_lpm_key k = lpm_key(p);
        err = bpf_map_update_elem(bpf_map__fd(skel_->maps.nb_prefixes), &k, &peer_id, BPF_ANY);
        if (!err && prefix_count_++ == 0) skel_->bss->nb_have_prefixes = 1;
    }
    if (err)
        throw DatapathError("adding route " + p.str() + ": " + errno_text(errno) +
                            (errno == E2BIG || errno == ENOMEM ? " (route map full)" : ""));
}

void Datapath::del_route(const IpPrefix& p) {
    if (auto off = dense4_offset(opts_, p)) {
        __atomic_store_n(&dense4_[*off], uint64_t{0}, __ATOMIC_RELEASE);
        return;
    }
    int err;
    if (p.is_host()) {
        nb_host_key k = host_key(p.addr);
        err = bpf_map_delete_elem(bpf_map__fd(skel_->maps.nb_hosts), &k);
    } else {
        nb_lpm_key k = lpm_key(p);
        err = bpf_map_delete_elem(bpf_map__fd(skel_->maps.nb_prefixes), &k);
        if (!err && --prefix_count_ == 0) skel_->bss->nb_have_prefixes = 0;
    }
    if (err && errno != ENOENT)
        throw DatapathError("removing route " + p.str() + ": " + errno_text(errno));
}

nb_peer_slot& Datapath::slot(uint32_t peer_id) {
    return slots_[peer_id];
}
const nb_peer_slot& Datapath::slot(uint32_t peer_id) const {
    return slots_[peer_id];
}

void Datapath::set_state(uint32_t peer_id, nb_slot_state state) {
    __atomic_store_n(&slots_[peer_id].state, static_cast<uint32_t>(state), __ATOMIC_SEQ_CST);
}

nb_slot_state Datapath::exchange_state(uint32_t peer_id, nb_slot_state state) {
    return static_cast<nb_slot_state>(__atomic_exchange_n(
        &slots_[peer_id].state, static_cast<uint32_t>(state), __ATOMIC_SEQ_CST));
}

void Datapath::mute(uint32_t peer_id, uint64_t until_ns) {
    uint32_t units = 0;
    if (until_ns > clock_.ref_ns && clock_.ns_per_jiffy) {
        uint64_t jiffies = clock_.ref_jiffies + (until_ns - clock_.ref_ns) / clock_.ns_per_jiffy;
        units = static_cast<uint32_t>(jiffies >> NB_MUTE_SHIFT);
    }
    __atomic_store_n(&slots_[peer_id].mute_until, units, __ATOMIC_RELAXED);
}

void Datapath::add_pending(uint32_t peer_id, uint32_t n) {
    __atomic_fetch_add(&slots_[peer_id].pending, n, __ATOMIC_SEQ_CST);
}

void Datapath::release_pending(uint32_t peer_id, uint32_t n) {
    __atomic_fetch_sub(&slots_[peer_id].pending, n, __ATOMIC_SEQ_CST);
}

void Datapath::reset_slot(uint32_t peer_id, nb_slot_state state) {
    nb_peer_slot& s = slots_[peer_id];
    __atomic_store_n(&s.state, static_cast<uint32_t>(NB_SLOT_UNUSED), __ATOMIC_SEQ_CST);
    nb_peer_slot fresh{};
    fresh.state = NB_SLOT_UNUSED;
    std::memcpy(&s, &fresh, sizeof(s));
    __atomic_store_n(&s.state, static_cast<uint32_t>(state), __ATOMIC_SEQ_CST);
}

nb_slot_state Datapath::state(uint32_t peer_id) const {
    return static_cast<nb_slot_state>(__atomic_load_n(&slots_[peer_id].state, __ATOMIC_SEQ_CST));
}

bool Datapath::take_missed(uint32_t peer_id) {
    uint32_t& m = slots_[peer_id].missed;
    // Most peers are unmarked: a load first keeps the scan from dirtying every line.
    return __atomic_load_n(&m, __ATOMIC_RELAXED) != 0 &&
           __atomic_exchange_n(&m, 0u, __ATOMIC_SEQ_CST) != 0;
}

void Datapath::set_replay_cookie(uint64_t cookie) {
    skel_->bss->nb_replay_cookie = cookie;
}

uint64_t Datapath::ring_full_count() const {
    return skel_->bss->nb_ring_full;
}

std::vector<std::pair<std::string, uint64_t>> Datapath::map_memory() const {
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const bpf_map* m :
         {skel_->maps.nb_hosts, skel_->maps.nb_prefixes, skel_->maps.nb_slots,
          skel_->maps.nb_events, skel_->maps.nb_scratch_map, skel_->maps.nb_dense4}) {
        out.emplace_back(bpf_map__name(m), memlock_bytes(bpf_map__fd(m)));
    }
    return out;
}

std::vector<int> Datapath::map_fds() const {
    std::vector<int> out;
    const bpf_map* m = nullptr;
    bpf_object__for_each_map(m, skel_->obj) out.push_back(bpf_map__fd(m));
    return out;
}

int Datapath::ringbuf_fd() const {
    return bpf_map__fd(skel_->maps.nb_events);
}
int Datapath::egress_fd() const {
    return bpf_program__fd(skel_->progs.nb_egress);
}
int Datapath::ingress_fd() const {
    return bpf_program__fd(skel_->progs.nb_ingress);
}

}  // namespace nb
