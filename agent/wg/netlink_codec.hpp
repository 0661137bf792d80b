// WireGuard's generic netlink messages (include/uapi/linux/wireguard.h) encoded and
// decoded without a socket: pure functions, so they are tested and fuzzed without a
// kernel that has WireGuard. NetlinkControl sends and reads them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "agent/wg/wg_control.hpp"

struct nlattr;

namespace nb {

// Set messages are cut at this size by default: far below the socket's send buffer
// (sk_sndbuf, ~208 KiB by default) and large enough that 100k peers need a few hundred
// round trips, not thousands.
inline constexpr std::size_t kWgNetlinkDefaultMessageSize = 32768;
// The smallest limit accepted: any single peer header plus one allowed IP fits in it.
inline constexpr std::size_t kWgNetlinkMinMessageSize = 1024;

// Throws WgError unless `ifname` can name a Linux interface.
void check_wg_ifname(std::string_view ifname);

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
