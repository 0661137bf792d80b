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
    struct nb_host_key dst = {};
    __u32 peer_id;

    if (nb_parse_addr(skb, &dst, NB_DST) < 0)
        return NB_PASS;
    struct nb_peer_slot *slot = nb_lookup_slot(&dst, &peer_id);
    if (!slot)
        return NB_PASS; /* not a peer: WireGuard decides, as without us */

    /* Connected and nothing of ours still in flight: the fast path. */
    if (slot->state == NB_SLOT_PASS && slot->pending == 0) {
        nb_stamp(&slot->last_tx_jiffies);
        return NB_PASS;
    }
    /* The agent's re-injected packets. It lowers `pending` itself once its send has
     * returned, i.e. once the packet sits in WireGuard's queue: lowering it here would
     * let a newer packet on another CPU overtake this one between here and the driver. */
    if (nb_is_replay(skb)) {
        nb_stamp(&slot->last_tx_jiffies);
        return NB_PASS;
    }
    /* Idle, Connecting (with or without the endpoint), or Connected with held packets
     * not yet replayed: hold, so that nothing overtakes them. */
    return nb_hold(skb, slot, peer_id, dst.family, bpf_ktime_get_ns());
}

/* Ingress: decrypted packets coming out of WireGuard, so their source passed
 * WireGuard's cryptokey routing. Keepalives and handshakes never get here. Records
 * activity and never drops. */
SEC("tc")
int nb_ingress(struct __sk_buff *skb)
{
    struct nb_host_key src = {};
    __u32 peer_id;

    if (nb_parse_addr(skb, &src, NB_SRC) < 0)
        return NB_PASS;
    struct nb_peer_slot *slot = nb_lookup_slot(&src, &peer_id);
    if (!slot)
        return NB_PASS;
    nb_stamp(&slot->last_rx_jiffies);
    if (slot->state == NB_SLOT_HOLD || slot->state == NB_SLOT_PASS_CONFIRM)
        nb_rx_wake(slot, peer_id, src.family, bpf_ktime_get_ns());
    return NB_PASS;
}

/* Never attached: the agent runs it (BPF_PROG_TEST_RUN) to pair jiffies, the activity
 * stamps' clock, with CLOCK_MONOTONIC. */
SEC("tc")
int nb_clock(struct __sk_buff *skb)
{
    nb_clock_jiffies = bpf_jiffies64();
    nb_clock_ns = bpf_ktime_get_ns();
    return NB_PASS;
}
