// The trigger engine: BPF programs or UDP listeners, and the fall-back from one to
// the other. The only part of the agent that knows which one runs.
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>

#include <spdlog/spdlog.h>

#include "agent/engine/agent.hpp"
#include "agent/lazy/state_file.hpp"
#include "agent/wg/netlink_control.hpp"
#include "agent/wg/uapi_control.hpp"
#include "agent/wg/wireguard_go.hpp"
#include "base/fault_point.hpp"
#include "base/memory.hpp"
#include "base/net/rtnl.hpp"
#include "base/printable.hpp"

namespace nb::engine {

static_assert(kDefaultRingBufferBytes == NB_DEFAULT_RINGBUF_BYTES);

void Agent::load_datapath(const std::vector<PeerSpec>& specs) {
    size_t routes = 0;
    V4HostBounds v4_hosts;
    for (const auto& p : specs) {
        routes += p.wg.allowed_ips.size();
        for (const auto& ip : p.wg.allowed_ips)
            if (ip.addr.family == AF_INET && ip.is_host()) v4_hosts.add(ip.addr.v4_value());
    }
    DatapathOptions dopts;
    dopts.max_peers = opts_.max_peers ? opts_.max_peers : capacity_for(specs.size());
    Dense4Range dense = dense4_range_for(v4_hosts, dopts.max_peers);
    // IPv4 host routes in the dense range take no hash entry; the hash's buckets are
    // sized by its capacity (16 bytes each, 32 MiB per million), so they do not count.
    if (dense.size) routes -= v4_hosts.count;
    dopts.max_routes = std::max(capacity_for(routes), dopts.max_peers);
    dopts.dense4_base = dense.base;
    dopts.dense4_size = dense.size;
    dopts.max_held = opts_.max_held_packets;
    dopts.ringbuf_bytes = opts_.ring_buffer_bytes;
    dp_ = std::make_unique<Datapath>(dopts);
    if (dense.size) {
        IpAddr first = IpAddr::v4(dense.base), last = IpAddr::v4(dense.base + (dense.size - 1));
        spdlog::info("datapath: {} peer slots; IPv4 host routes {} - {} in an array",
                     dopts.max_peers, first.str(), last.str());
    }
}

void Agent::attach_datapath(int ifindex) {
    hold_ = std::make_unique<BpfHold>(*dp_);
    sink_ = std::make_unique<InjectorSink>(ifindex);
    dp_->set_replay_cookie(sink_->cookie());
    dp_->attach(ifindex, opts_.attach_mode);
    order_ = std::make_unique<OrderWatch>(*dp_, opts_.interface, monotonic_ns());
    base_status_.trigger = TriggerEngine::Bpf;
    base_status_.attach_mode = dp_->attach_mode();
}

void Agent::prepare_trigger(const std::vector<PeerSpec>& specs) {
    want_udp_ = opts_.trigger == TriggerMode::Udp;
    if (want_udp_) return;
    try {
        load_datapath(specs);
    } catch (const std::exception& e) {
        if (opts_.trigger == TriggerMode::Bpf)
            throw std::runtime_error(std::string("--trigger bpf: ") + e.what());
        dp_.reset();
        fall_back_to_udp(e.what());
    }
}

void Agent::fall_back_to_udp(const std::string& why) {
    spdlog::warn(
        "the BPF trigger engine is not usable ({}): falling back to per-peer UDP "
        "listeners",
        why);
    want_udp_ = true;
    base_status_.trigger_reason = why;
}

void Agent::activate_trigger(int ifindex, size_t peers) {
    if (dp_) {
        try {
            attach_datapath(ifindex);
        } catch (const std::exception& e) {
            if (opts_.trigger == TriggerMode::Bpf)
                throw std::runtime_error(std::string("--trigger bpf: ") + e.what());
            std::string why = std::string("attaching the programs: ") + e.what();
            drop_trigger();
            fall_back_to_udp(why);
        }
    }
    uint32_t capacity = opts_.max_peers ? opts_.max_peers : capacity_for(peers);
    widen_tun_queue(capacity);
    if (!want_udp_) return;
    // Checked up front: a limit hit halfway would leave some peers without a listener.
    for (const auto& w : check_udp_listener_limits(capacity)) spdlog::info("{}", w);
    UdpTrigger::Options o;
    o.capacity = capacity;
    o.forward_initiation = opts_.udp_forward_handshake;
    udp_ = std::make_unique<UdpTrigger>(
        o, [this](uint32_t id) { mgr_->on_trigger(id, monotonic_ns()); });
    base_status_.trigger = TriggerEngine::Udp;
    base_status_.attach_mode.reset();
}

void Agent::drop_trigger() {
    // Their fds close: a later fd with the same number must not reach their callbacks.
    if (fds_ && activity_) fds_->forget(activity_->fd());
    if (fds_ && udp_) fds_->forget(udp_->fd());
    activity_.reset();
    udp_.reset();
    sink_.reset();
    hold_.reset();
    order_.reset();
    if (dp_) dp_->detach();
    dp_.reset();
    base_status_.trigger.reset();
    base_status_.attach_mode.reset();
}

HoldDatapath* Agent::hold_port() const {
    if (udp_) return udp_.get();
    return hold_.get();
}

void Agent::watch_activity() {
    if (dp_) {
        activity_ = std::make_unique<BpfActivitySource>(
            *dp_, BpfActivitySource::Callbacks{
                      [this](uint32_t id, std::span<const std::span<const uint8_t>> pkts,
                             uint64_t ts) { mgr_->on_held_packets(id, pkts, ts); },
                      [this](uint32_t id, uint64_t ts) { mgr_->on_rx_wake(id, ts); }});
        watch(activity_->fd(), [this](uint32_t) { activity_->consume(); });
    }
    if (udp_) watch(udp_->fd(), [this](uint32_t) { udp_->consume(); });
}

void Agent::tell_udp_wireguard_source() {
    if (!udp_) return;
    // Forwarded handshake initiations leave from WireGuard's port, with its fwmark.
    WgDevice dev = wg_->get_device();
    udp_->set_wireguard_source(dev.listen_port, dev.fwmark);
}

}  // namespace nb::engine
