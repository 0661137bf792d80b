#include "agent/wg/wg_control.hpp"

namespace nb {

PeerUpdate remove_peer_op(const WgKey& key) {
    PeerUpdate op;
    op.public_key = key;
    op.remove = true;
    return op;
}

PeerUpdate readd_peer_op(const WgPeer& peer) {
    return readd_peer_op(peer.public_key, peer.preshared_key, peer.allowed_ips);
}

PeerUpdate readd_peer_op(const WgKey& key, const std::optional<WgKey>& preshared_key,
                         std::span<const IpPrefix> allowed_ips) {
    PeerUpdate op;
    op.public_key = key;
    op.preshared_key = preshared_key;
    op.allowed_ips.assign(allowed_ips.begin(), allowed_ips.end());
    op.replace_allowed_ips = true;
    // Explicitly off: an idle peer must not send keepalives that would wake it.
    op.persistent_keepalive = 0;
    return op;
}

}  // namespace nb
