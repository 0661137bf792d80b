// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc programs on the WireGuard device. Entry points stay thin; the logic is in lib/. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#include "lazy_peer_kern_user.h"
#include "lib/config.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/peer_lookup.h"
#include "lib/hold.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* "Not ours to stop": other tc users of the device still run after us. TC_ACT_OK would
 * end a clsact filter chain (and TCX_PASS a tcx chain) and skip them; with no other
 * user, both hooks treat "unspecified"/"next" as pass. */
#define NB_PASS TC_ACT_UNSPEC

/* Egress: inner packets on their way into WireGuard. */
SEC("tc")
int nb_egress(struct __sk_buff *skb)
{
    struct nb_addrs a = {};
    __u32 peer_id;

    if (nb_parse_addrs(skb, &a) < 0)
        return NB_PASS;
    struct nb_peer_slot *slot = nb_lookup_slot(&a.dst, &peer_id);
    if (!slot)
        return NB_PASS; /* not a peer: WireGuard decides, as without us */

    __u64 now = bpf_ktime_get_ns();
    /* Connected and nothing of ours still in flight: the fast path. */
    if (slot->state == NB_SLOT_PASS && slot->pending == 0) {
        slot->last_tx_ns = now;
        nb_add(&slot->tx_packets, 1);
        return NB_PASS;
    }
    /* The agent's re-injected packets. It lowers `pending` itself once its send has
     * returned, i.e. once the packet sits in WireGuard's queue: lowering it here would
     * let a newer packet on another CPU overtake this one between here and the driver. */
    if (nb_is_replay(skb)) {
        slot->last_tx_ns = now;
        nb_add(&slot->tx_packets, 1);
        return NB_PASS;
    }
    /* Idle, Connecting (with or without the endpoint), or Connected with held packets
     * not yet replayed: hold, so that nothing overtakes them. */
    return nb_hold(skb, slot, peer_id, a.dst.family, now);
}

/* Ingress: decrypted packets coming out of WireGuard, so their source passed
 * WireGuard's cryptokey routing. Keepalives and handshakes never get here. Records
 * activity and never drops. */
SEC("tc")
int nb_ingress(struct __sk_buff *skb)
{
    struct nb_addrs a = {};
    __u32 peer_id;

    if (nb_parse_addrs(skb, &a) < 0)
        return NB_PASS;
    struct nb_peer_slot *slot = nb_lookup_slot(&a.src, &peer_id);
    if (!slot)
        return NB_PASS;
    __u64 now = bpf_ktime_get_ns();
    slot->last_rx_ns = now;
    nb_add(&slot->rx_packets, 1);
    if (slot->state == NB_SLOT_HOLD || slot->state == NB_SLOT_PASS_CONFIRM)
        nb_rx_wake(slot, peer_id, a.src.family, now);
    return NB_PASS;
}
