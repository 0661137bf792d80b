// WireGuard control for the kernel module over generic netlink (family "wireguard",
// include/uapi/linux/wireguard.h), via libmnl. The message encoding and decoding are
// pure functions below so they can be tested without a kernel that has WireGuard.
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

#include "agent/common/unique_fd.hpp"
#include "agent/wg/wg_control.hpp"

struct mnl_socket;
struct nlattr;

namespace nb {

// Set messages are cut at this size by default: far below the socket's send buffer
// (sk_sndbuf, ~208 KiB by default) and large enough that 100k peers need a few hundred
// round trips, not thousands.
inline constexpr std::size_t kWgNetlinkDefaultMessageSize = 32768;
// The smallest limit accepted: any single peer header plus one allowed IP fits in it.
inline constexpr std::size_t kWgNetlinkMinMessageSize = 1024;

class NetlinkControl : public WgControl {
  public:
    // Opens one generic netlink socket in the calling thread's network namespace (it
    // stays there whichever thread calls later) and resolves the "wireguard" family.
    // Throws WgError "kernel WireGuard is not available (...)" where the kernel has none.
    explicit NetlinkControl(std::string interface);
    ~NetlinkControl() override;
    NetlinkControl(const NetlinkControl&) = delete;
    NetlinkControl& operator=(const NetlinkControl&) = delete;

    std::string backend_name() const override { return "kernel"; }
    // One WG_CMD_GET_DEVICE dump (all peers, with statistics); an interrupted dump (the
    // device changed under it) is retried a few times.
    WgDevice get_device() override;
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

// --- Encoding and decoding, without a socket ---

// The WG_CMD_SET_DEVICE messages for `update`, none longer than `max_msg` bytes (at least
// kWgNetlinkMinMessageSize), with sequence numbers first_seq, first_seq + 1, ... Device
// attributes and WGDEVICE_F_REPLACE_PEERS go in the first message only. A peer whose
// allowed IPs do not fit continues in the next message as the same key with only
// WGPEER_F_UPDATE_ONLY and the remaining allowed IPs. Throws WgError for an update that
// cannot be encoded (bad endpoint or prefix, interface name too long).
std::vector<std::vector<uint8_t>> build_set_device_messages(std::string_view ifname,
                                                            const DeviceUpdate& update,
                                                            uint16_t family_id, uint32_t first_seq,
                                                            std::size_t max_msg);
// The WG_CMD_GET_DEVICE dump request for `ifname`.
std::vector<uint8_t> build_get_device_request(std::string_view ifname, uint16_t family_id,
                                              uint32_t seq);

// Decodes the datagrams of one WG_CMD_GET_DEVICE dump as they arrive. Every length and
// nesting is checked; the messages must carry `seq` and `portid` (0 = not checked).
// Errors read "kernel WireGuard: <what>: ...".
class GetDeviceDecoder {
  public:
    GetDeviceDecoder(uint16_t family_id, uint32_t seq, uint32_t portid,
                     std::string what = "reading the device");
    // Consumes one datagram (one or more netlink messages). Returns true once NLMSG_DONE
    // has been seen. Throws WgError naming the malformed part or the kernel's error.
    bool feed(std::span<const uint8_t> datagram);
    // The kernel flagged the dump inconsistent (NLM_F_DUMP_INTR): the device changed
    // while it was read, so the result must be read again.
    bool interrupted() const { return interrupted_; }
    bool done() const { return done_; }
    WgDevice take() { return std::move(device_); }

  private:
    void data_message(const void* payload, std::size_t len);
    void peer(const void* payload, std::size_t len, bool first_in_message);
    IpPrefix allowed_ip(const nlattr* entry) const;

    uint16_t family_id_;
    uint32_t seq_;
    uint32_t portid_;
    std::string what_;
    bool done_ = false;
    bool interrupted_ = false;
    WgDevice device_;
    std::unordered_set<WgKey, WgKeyHash> seen_;
};

// Decodes a complete dump; throws WgError if it is malformed, incomplete (no NLMSG_DONE)
// or was interrupted.
WgDevice parse_get_device_messages(std::span<const std::vector<uint8_t>> datagrams,
                                   uint16_t family_id, uint32_t seq = 0, uint32_t portid = 0);

// The two other replies NetlinkControl reads. The "wireguard" family id from a datagram
// of the reply to CTRL_CMD_GETFAMILY, nullopt while it held no message but NLMSG_NOOP;
// throws WgError "kernel WireGuard is not available (...)" where the kernel has no such
// family, and WgError for any other error or a malformed reply.
std::optional<uint16_t> decode_family_reply(std::span<const uint8_t> datagram, uint32_t seq,
                                            uint32_t portid);
// True once a datagram carried the ack of request `seq`, false while it held no message
// but NLMSG_NOOP; throws WgError with the kernel's error (and its extended-ack text), or
// for a malformed reply. `what` names the request in the messages.
bool decode_ack(std::span<const uint8_t> datagram, uint32_t seq, uint32_t portid,
                const std::string& what);

}  // namespace nb
