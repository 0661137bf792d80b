/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Definitions shared by the lazy-peer tc programs and user space: map keys and
 * values, the ring-buffer event and the constants both sides must agree on.
 * This is the only place these layouts are written down.
 */
#ifndef NB_LAZY_PEER_KERN_USER_H
#define NB_LAZY_PEER_KERN_USER_H

#ifdef __BPF__
#include <linux/types.h>
#else
#include <linux/types.h>
#endif

/* Largest packet the egress program copies into the ring buffer: a GSO super-packet
 * (a large TCP write or a UDP_SEGMENT send hands the device one skb of up to 64 KiB,
 * the kernel's limit without BIG TCP, which WireGuard does not enable). Larger ones
 * are dropped and counted. A power of two, so a mask can bound lengths. */
#define NB_MAX_HELD_PKT_LEN 65536

/* Address families as stored in keys (AF_INET/AF_INET6 values, fixed here so
 * the BPF side needs no libc header). */
#define NB_AF_INET 2
#define NB_AF_INET6 10

/* Exact-match key for host routes (/32, /128): a hit is always the longest match, so
 * it is tried before the trie. IPv4 host routes inside the dense range (below) are in
 * an array instead. */
struct nb_host_key {
    __u8 family;
    __u8 pad[3];
    __u8 addr[16]; /* IPv4 uses the first 4 bytes, the rest stay zero */
};

/* LPM-trie key for prefixes. The family byte is part of the matched data so
 * IPv4 and IPv6 share one trie: prefixlen = 8 + prefix length. */
struct nb_lpm_key {
    __u32 prefixlen;
    __u8 family;
    __u8 addr[16];
} __attribute__((packed));

/* What the egress program does with a peer's packets. */
enum nb_slot_state {
    NB_SLOT_UNUSED = 0, /* no peer at this index: pass */
    NB_SLOT_HOLD = 1,   /* Idle or Connecting: copy to the ring, never reach WireGuard */
    NB_SLOT_PASS = 2,   /* Connected: pass once every held packet was replayed */
    /* Endpoint set, handshake not yet proven: hold like HOLD (the agent's replays pass),
     * because WireGuard flushes its handshake queue when the handshake completes and a
     * packet passed meanwhile could overtake that queue. The first ingress packet turns
     * it into PASS and tells the agent (NB_EV_RX_WAKE). */
    NB_SLOT_PASS_CONFIRM = 3,
};

/*
 * Per-peer slot in an mmap-able array indexed by peer id. User space reads it without
 * syscalls and adjusts `pending` with atomics. 48 bytes.
 * Activity is a jiffies stamp, written at most once per jiffy: the per-packet path reads
 * no clock (bpf_ktime_get_ns() was a third of its cost) and dirties no cache line.
 */
struct nb_peer_slot {
    __u32 state;   /* enum nb_slot_state */
    __u32 pending; /* held packets not yet replayed or discarded (the agent lowers it) */
    __u64 last_tx_jiffies; /* bpf_jiffies64() of the last egress packet, 0 = never */
    __u64 last_rx_jiffies; /* bpf_jiffies64() of the last ingress packet, 0 = never */
    __u64 held;    /* packets copied to the ring buffer */
    __u64 dropped; /* packets dropped in BPF: hold limit, too big, ring full */
    /* Set to 1 when a report for this peer (held packet or rx wake) did not fit in the
     * ring buffer; the agent clears it when it recovers (a plain store: 5.10 has no
     * atomic or, and the flag only ever goes to 1 here). */
    __u32 missed;
    /* In HOLD, while jiffies >> NB_MUTE_SHIFT is below this, the peer's packets are
     * dropped and counted without a report: the agent would drop them anyway (the peer
     * backs off after a failed wake, or waits for admission), and under a sweep of many
     * idle peers' addresses the reports would be most of its work. 0: not muted. The
     * agent is the authority: a mute ends early rather than late. */
    __u32 mute_until;
};

/* Mute times are in units of 2^NB_MUTE_SHIFT jiffies (0.256 s at HZ=1000): 32 bits
 * then last 34 years, so no wrap needs handling. */
#define NB_MUTE_SHIFT 8

enum nb_event_type {
    NB_EV_HELD = 1,      /* a packet to a peer in HOLD, its bytes follow */
    /* The first ingress packet from a peer in HOLD (the remote woke it) or in
     * PASS_CONFIRM (our handshake completed). The program has already moved the
     * slot to PASS, so replies are not held while the agent catches up. */
    NB_EV_RX_WAKE = 2,
};

/* Ring-buffer record header; for NB_EV_HELD `cap_len` packet bytes follow. */
struct nb_event {
    __u16 type;
    __u16 family;
    __u32 peer_id;
    __u64 ts_ns;
    __u32 pkt_len;
    __u32 cap_len;
    /* NB_EV_HELD: payload bytes per segment when the packet is a GSO super-packet that
     * the device would have cut (skb gso_size), else 0. User space cuts it the same way:
     * its AF_PACKET socket refuses anything above the MTU. */
    __u32 gso_size;
    __u32 reserved;
};

/* Sizes user space must use when creating the maps at load time. */
#define NB_DEFAULT_MAX_PEERS (1u << 20)
#define NB_DEFAULT_RINGBUF_BYTES (8u << 20)
#define NB_DEFAULT_MAX_HELD 128

#endif /* NB_LAZY_PEER_KERN_USER_H */
