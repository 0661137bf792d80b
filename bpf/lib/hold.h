/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Holding packets of idle peers: copy to the ring buffer, keep them from
 * WireGuard, and let the agent's re-injected copies through in order. */
#ifndef NB_BPF_HOLD_H
#define NB_BPF_HOLD_H

#include <linux/pkt_cls.h>

#include "lib/maps.h"
#include "lib/config.h"

/*
 * The verdict for a held (or deliberately dropped) packet. A redirect to
 * ifindex 0 finds no device, so the kernel frees the skb, yet the egress hook
 * reports NET_XMIT_SUCCESS to the sender: no ENOBUFS for ping, no ICMP error.
 * TC_ACT_STOLEN would do the same on clsact, but tcx treats it as "next" and
 * would let the packet through.
 */
static __always_inline int nb_consume(void)
{
    return bpf_redirect(0, 0);
}

static __always_inline void nb_add(__u64 *counter, __u64 v)
{
    __sync_fetch_and_add(counter, v);
}

/* Activity stamp: written only when the jiffy changed, so a busy peer's slot is not
 * dirtied (and bounced between CPUs) on every packet. */
static __always_inline void nb_stamp(__u64 *stamp)
{
    __u64 j = bpf_jiffies64();
    if (*stamp != j)
        *stamp = j;
}

/* Whether the skb is one of the agent's re-injected packets. */
static __always_inline int nb_is_replay(struct __sk_buff *skb)
{
    __u64 cookie = nb_replay_cookie;
    return cookie && bpf_get_socket_cookie(skb) == cookie;
}

/* The ring buffer is full (the agent fell behind): mark the peer before counting, so
 * an agent that sees the count grow finds the mark, wakes the peer and nothing is
 * stuck; only the packet itself is lost. */
static __always_inline void nb_report_lost(struct nb_peer_slot *slot)
{
    slot->missed = 1;
    __sync_fetch_and_add(&nb_ring_full, 1);
}

static __always_inline int nb_hold(struct __sk_buff *skb, struct nb_peer_slot *slot, __u32 peer_id,
                                   __u16 family, __u64 now)
{
    __u32 len = skb->len - nb_l2_len;
    __u32 cpu = bpf_get_smp_processor_id();

    /* The agent keeps at most nb_max_held per peer; stop copying earlier. */
    if (slot->pending >= nb_max_held || len == 0 || len > NB_MAX_HELD_PKT_LEN)
        goto drop;
    /* Muted by the agent: it would drop the packet too, so it costs no report. */
    __u32 mute = slot->mute_until;
    if (mute && slot->state == NB_SLOT_HOLD && (bpf_jiffies64() >> NB_MUTE_SHIFT) < mute)
        goto drop;

    struct nb_scratch *s = bpf_map_lookup_elem(&nb_scratch_map, &cpu);
    if (!s)
        goto drop;
    s->ev.type = NB_EV_HELD;
    s->ev.family = family;
    s->ev.peer_id = peer_id;
    s->ev.ts_ns = now;
    s->ev.pkt_len = len;
    s->ev.cap_len = len;
    s->ev.gso_size = skb->gso_size;
    s->ev.reserved = 0;
    /* clang tests a copy of len and passes the original, so the verifier
     * loses the bounds; the mask gives it [1, NB_MAX_HELD_PKT_LEN] on the register
     * actually passed (len is already known to be in that range). */
    __u32 n = ((len - 1) & (NB_MAX_HELD_PKT_LEN - 1)) + 1;
    if (bpf_skb_load_bytes(skb, nb_l2_len, s->data, n) < 0)
        goto drop;

    /* Count before publishing: the agent may replay (and decrement) before
     * this CPU would otherwise get to the increment. */
    __sync_fetch_and_add(&slot->pending, 1);
    if (bpf_ringbuf_output(&nb_events, s, sizeof(s->ev) + n, 0) < 0) {
        __sync_fetch_and_add(&slot->pending, -1);
        nb_report_lost(slot);
        goto drop;
    }
    nb_add(&slot->held, 1);
    return nb_consume();
drop:
    nb_add(&slot->dropped, 1);
    return nb_consume();
}

/*
 * The peer is talking to us through a live session: pass its traffic from now on,
 * in the kernel, so our replies are not held while the agent catches up; then tell
 * the agent. A plain store (no cmpxchg before 5.12): two CPUs racing here both send
 * an event, and the agent takes the second as a no-op. Packets still held keep the
 * order through `pending`.
 */
static __always_inline void nb_rx_wake(struct nb_peer_slot *slot, __u32 peer_id, __u16 family, __u64 now)
{
    slot->state = NB_SLOT_PASS;
    struct nb_event ev = {
        .type = NB_EV_RX_WAKE,
        .family = family,
        .peer_id = peer_id,
        .ts_ns = now,
    };
    if (bpf_ringbuf_output(&nb_events, &ev, sizeof(ev), 0) < 0)
        nb_report_lost(slot);
}

#endif
