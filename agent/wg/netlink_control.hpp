// WireGuard control for the kernel module over generic netlink (family "wireguard",
// include/uapi/linux/wireguard.h), via libmnl. The messages are encoded and decoded by
// pure functions (netlink_codec.hpp), tested without a kernel that has WireGuard.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "agent/wg/netlink_codec.hpp"
#include "agent/wg/wg_control.hpp"
#include "base/unique_fd.hpp"

struct mnl_socket;

namespace nb {

class NetlinkControl : public WgControl {
  public:
    // Opens one generic netlink socket in the calling thread's network namespace (it
    // stays there whichever thread calls later) and resolves the "wireguard" family.
    // Throws WgError "kernel WireGuard is not available (...)" where the kernel has none.
    explicit NetlinkControl(std::string interface);
    ~NetlinkControl() override;
    NetlinkControl(const NetlinkControl&) = delete;
    NetlinkControl& operator=(const NetlinkControl&) = delete;

    WgBackend backend() const override { return WgBackend::Kernel; }
    // One WG_CMD_GET_DEVICE dump (all peers, with statistics); an interrupted dump (the
    // device changed under it) is retried a few times.
    WgDevice get_device() override;
    // For a look at a busy device (debug bundles): get_device, except that when every
    // attempt was interrupted it returns the last dump as it came, which may miss or
    // repeat the peers that changed meanwhile; `consistent` says which it was.
    WgDevice get_device_as_is(bool& consistent);
    // Dumps the kernel flagged inconsistent (NLM_F_DUMP_INTR) and get_device discarded.
    uint64_t interrupted_dumps() const { return interrupted_dumps_; }
    // Sent as several WG_CMD_SET_DEVICE messages when large, each acknowledged before the
    // next, so a failure part-way leaves the earlier batches applied; the error says which.
    void set_device(const DeviceUpdate& update) override;

    // Bounds every wait for a kernel reply; default 10 s.
    void set_timeout(std::chrono::milliseconds timeout);
    // Largest set message; clamped to [kWgNetlinkMinMessageSize, 65536].
    void set_max_message_size(std::size_t bytes);
    uint16_t family_id() const { return family_id_; }

  private:
    WgDevice read_device(bool accept_interrupted, bool& consistent);
    struct SocketCloser {
        void operator()(mnl_socket* s) const;
    };
    // After a failed exchange the socket is replaced (queued replies and an abandoned
    // dump go with it), in the creation namespace even when the caller is elsewhere.
    void open_socket();
    uint32_t next_seq() { return ++seq_; }
    // Receives one datagram into buf_; throws on timeout or socket error.
    std::size_t receive(const std::string& what);
    // Sends `msg` (already carrying its seq) and waits for its ack.
    void transact_ack(const std::vector<uint8_t>& msg, const std::string& what);

    std::string interface_;
    UniqueFd netns_;  // the namespace a replacement socket is opened in
    std::unique_ptr<mnl_socket, SocketCloser> nl_;
    uint32_t portid_ = 0;
    uint64_t interrupted_dumps_ = 0;
    uint32_t seq_ = 0;
    uint16_t family_id_ = 0;
    std::chrono::milliseconds timeout_{10000};
    std::size_t max_msg_ = kWgNetlinkDefaultMessageSize;
    std::vector<uint8_t> buf_;
};

// True when the kernel resolves the "wireguard" generic netlink family (which also
// makes it load the module if it can). Never throws.
bool kernel_wireguard_available();

}  // namespace nb
