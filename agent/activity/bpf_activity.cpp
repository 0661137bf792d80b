#include "agent/activity/bpf_activity.hpp"

#include <bpf/libbpf.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

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
    nb_event ev;
    // The kernel is trusted less than it could be: a record that does not match
    // its own header is counted and skipped, never read past.
    if (size < sizeof(ev)) {
        ++self->malformed_;
        return 0;
    }
    std::memcpy(&ev, data, sizeof(ev));
    if (ev.peer_id >= self->dp_.max_peers()) {
        ++self->malformed_;
        return 0;
    }
    switch (ev.type) {
        case NB_EV_HELD: {
            if (ev.cap_len != size - sizeof(ev) || ev.cap_len == 0) {
                ++self->malformed_;
                return 0;
            }
            auto* p = static_cast<const uint8_t*>(data) + sizeof(ev);
            self->cb_.held(ev.peer_id, std::span<const uint8_t>(p, ev.cap_len), ev.ts_ns);
            break;
        }
        case NB_EV_RX_WAKE:
            self->cb_.rx_wake(ev.peer_id, ev.ts_ns);
            break;
        default:
            ++self->malformed_;
    }
    return 0;
}

}  // namespace nb
