// The WireGuard-control interface: one implementation per backend (UAPI socket for
// wireguard-go, generic netlink for kernel WireGuard). The lazy manager only sees this.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "agent/wg/key.hpp"
#include "agent/wg/wg_backend.hpp"
#include "base/net/ip.hpp"

namespace nb {

// How a request to WireGuard failed. Only Rejected means WireGuard saw the request and
// said no; after NoAnswer it may still apply it later (a stopped daemon resumes).
enum class WgFault {
    Rejected,  // an answer: an error code or a malformed reply
    NoAnswer,  // no answer in time (stopped or swamped daemon)
    Gone,      // nobody there: no UAPI socket, connection refused, device gone
};

// Any failure talking to WireGuard, including a malformed reply; the message names it.
struct WgError : std::runtime_error {
    explicit WgError(const std::string& what, WgFault f = WgFault::Rejected)
        : std::runtime_error(what), fault(f) {}
    WgFault fault;
};

struct WgPeer {
    WgKey public_key;
    std::optional<WgKey> preshared_key;
    std::vector<IpPrefix> allowed_ips;
    std::optional<SockAddr> endpoint;
    uint16_t persistent_keepalive = 0;
    // Read-only statistics (ignored on set).
    uint64_t rx_bytes = 0;
    uint64_t tx_bytes = 0;
    int64_t last_handshake_sec = 0;  // 0 = never
};

struct WgDevice {
    std::optional<WgKey> private_key;
    uint16_t listen_port = 0;
    uint32_t fwmark = 0;
    std::vector<WgPeer> peers;
};

// One peer operation inside a DeviceUpdate, in WireGuard's own terms.
struct PeerUpdate {
    WgKey public_key;
    bool remove = false;               // remove the peer (clears endpoint and session)
    bool update_only = false;          // fail/skip if the peer does not exist
    bool replace_allowed_ips = false;  // drop existing allowed IPs first
    std::optional<WgKey> preshared_key;
    std::optional<SockAddr> endpoint;
    std::optional<uint16_t> persistent_keepalive;
    std::vector<IpPrefix> allowed_ips;  // added
};

struct DeviceUpdate {
    std::optional<WgKey> private_key;
    std::optional<uint16_t> listen_port;
    std::optional<uint32_t> fwmark;
    bool replace_peers = false;
    std::vector<PeerUpdate> peers;  // applied in order; backends batch as they need
};

class WgControl {
  public:
    virtual ~WgControl() = default;
    virtual WgBackend backend() const = 0;
    virtual WgDevice get_device() = 0;
    virtual void set_device(const DeviceUpdate& update) = 0;
    // False while WireGuard is known not to answer or to be gone (see WgHealth): calls
    // then fail at once with that reason, and the caller need not try.
    virtual bool available() const { return true; }
    virtual std::string unavailable_reason() const { return {}; }
};

// Builds the update that clears a peer's endpoint and session: WireGuard has no
// "unset endpoint", so the peer is removed and re-added in the same message.
PeerUpdate remove_peer_op(const WgKey& key);
PeerUpdate readd_peer_op(const WgPeer& peer);  // without endpoint or keepalive
PeerUpdate readd_peer_op(const WgKey& key, const std::optional<WgKey>& preshared_key,
                         std::span<const IpPrefix> allowed_ips);

}  // namespace nb
