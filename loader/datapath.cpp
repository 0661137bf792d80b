#include "loader/datapath.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lazy_peer.skel.h"

namespace nb {

namespace {

std::string err_text(int err) {
    return std::strerror(err < 0 ? -err : err);
}

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
    skel_ = lazy_peer__open();
    if (!skel_) throw DatapathError("opening BPF object: " + err_text(errno));

    skel_->rodata->nb_l2_len = opts_.l2_len;
    skel_->rodata->nb_max_held = opts_.max_held;
    // The ring buffer size must be a power-of-two number of pages.
    uint32_t rb = round_up_pow2(std::max<uint32_t>(opts_.ringbuf_bytes, getpagesize()));
    opts_.ringbuf_bytes = rb;
    int err = bpf_map__set_max_entries(skel_->maps.nb_events, rb);
    if (!err) err = bpf_map__set_max_entries(skel_->maps.nb_slots, opts_.max_peers);
    if (!err) err = bpf_map__set_max_entries(skel_->maps.nb_hosts, opts_.max_routes);
    if (!err) err = bpf_map__set_max_entries(skel_->maps.nb_prefixes, opts_.max_routes);
    if (err) {
        lazy_peer__destroy(skel_);
        throw DatapathError("sizing BPF maps: " + err_text(err));
    }
    err = lazy_peer__load(skel_);
    if (err) {
        lazy_peer__destroy(skel_);
        throw DatapathError("loading BPF programs: " + err_text(err) +
                            " (needs root with CAP_BPF and CAP_NET_ADMIN, and a kernel with "
                            "ring buffer support)");
    }
    slots_len_ = sizeof(nb_peer_slot) * opts_.max_peers;
    size_t page = getpagesize();
    slots_len_ = (slots_len_ + page - 1) / page * page;
    void* m = mmap(nullptr, slots_len_, PROT_READ | PROT_WRITE, MAP_SHARED,
                   bpf_map__fd(skel_->maps.nb_slots), 0);
    if (m == MAP_FAILED) {
        int e = errno;
        lazy_peer__destroy(skel_);
        throw DatapathError("mapping peer slots: " + err_text(e));
    }
    slots_ = static_cast<nb_peer_slot*>(m);
}

Datapath::~Datapath() {
    attachment_.reset();
    if (slots_) munmap(slots_, slots_len_);
    lazy_peer__destroy(skel_);
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

void Datapath::add_route(const IpPrefix& p, uint32_t peer_id) {
    if (peer_id >= opts_.max_peers) throw DatapathError("peer id beyond the slot map");
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
        throw DatapathError("adding route " + p.str() + ": " + err_text(errno) +
                            (errno == E2BIG || errno == ENOMEM ? " (route map full)" : ""));
}

void Datapath::del_route(const IpPrefix& p) {
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
        throw DatapathError("removing route " + p.str() + ": " + err_text(errno));
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

void Datapath::set_replay_cookie(uint64_t cookie) {
    skel_->bss->nb_replay_cookie = cookie;
}

uint64_t Datapath::ring_full_count() const {
    return skel_->bss->nb_ring_full;
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
