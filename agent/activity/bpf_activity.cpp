#include "agent/activity/bpf_activity.hpp"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "agent/activity/gso_segment.hpp"
#include "agent/activity/ring_record.hpp"
#include "loader/datapath.hpp"

namespace nb {

BpfActivitySource::BpfActivitySource(const Datapath& dp, Callbacks cb)
    : dp_(dp), cb_(std::move(cb)) {
    rb_ = ring_buffer__new(dp_.ringbuf_fd(), &BpfActivitySource::on_record, this, nullptr);
    if (!rb_) throw std::runtime_error(std::string("ring buffer: ") + std::strerror(errno));
}

BpfActivitySource::~BpfActivitySource() {
    ring_buffer__free(rb_);
}

int BpfActivitySource::fd() const {
    return ring_buffer__epoll_fd(rb_);
}

int BpfActivitySource::consume() {
    const int n = ring_buffer__consume(rb_);
    if (n > 0) records_ += static_cast<uint64_t>(n);
    return n;
}

int BpfActivitySource::on_record(void* ctx, void* data, size_t size) {
    auto* self = static_cast<BpfActivitySource*>(ctx);
    // A record that does not match its own header is counted and skipped, never read past.
    auto ev = decode_ring_record({static_cast<const uint8_t*>(data), size}, self->dp_.max_peers());
    if (!ev) {
        ++self->malformed_;
        return 0;
    }
    if (ev->kind == RingEvent::Kind::RxWake) {
        self->cb_.rx_wake(ev->peer_id, ev->ts_ns);
        return 0;
    }
    // The device would have cut a GSO super-packet; the re-injection socket cannot send
    // more than the MTU, so cut it here, as the device would.
    if (ev->gso_size != 0) {
        if (auto segments = segment_gso(ev->packet, ev->gso_size)) {
            if (segments->size() > 1) ++self->gso_split_;
            std::vector<std::span<const uint8_t>> views(segments->begin(), segments->end());
            self->cb_.held(ev->peer_id, views, ev->ts_ns);
            return 0;
        }
        ++self->gso_unsplit_;
    }
    const std::span<const uint8_t> one[] = {ev->packet};
    self->cb_.held(ev->peer_id, one, ev->ts_ns);
    return 0;
}

}  // namespace nb
