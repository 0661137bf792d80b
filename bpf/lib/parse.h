/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reads one inner IP address of a packet on a layer-3 device. */
#ifndef NB_BPF_PARSE_H
#define NB_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/stddef.h>
#include <bpf/bpf_helpers.h>

#include "lazy_peer_kern_user.h"
#include "lib/config.h"

enum nb_which_addr { NB_SRC, NB_DST };

/* Fills `k` (zeroed by the caller) with the packet's source or destination address:
 * only the one the lookup needs is read, on the per-packet path. Returns 0 for IPv4
 * and IPv6 packets, -1 for anything else (those are never a peer's concern). */
static __always_inline int nb_parse_addr(struct __sk_buff *skb, struct nb_host_key *k,
                                         enum nb_which_addr which)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    __u32 off = nb_l2_len;
    __u8 *p = data + off;

    if ((void *)(p + 1) > data_end)
        return -1;
    switch (*p >> 4) {
    case 4: {
        __u32 at = which == NB_SRC ? offsetof(struct iphdr, saddr) : offsetof(struct iphdr, daddr);
        k->family = NB_AF_INET;
        if ((void *)(p + sizeof(struct iphdr)) <= data_end) {
            __builtin_memcpy(k->addr, p + at, 4);
            return 0;
        }
        /* Header not in the linear part: copy it out. */
        return bpf_skb_load_bytes(skb, off + at, k->addr, 4) < 0 ? -1 : 0;
    }
    case 6: {
        __u32 at = which == NB_SRC ? offsetof(struct ipv6hdr, saddr) : offsetof(struct ipv6hdr, daddr);
        k->family = NB_AF_INET6;
        if ((void *)(p + sizeof(struct ipv6hdr)) <= data_end) {
            __builtin_memcpy(k->addr, p + at, 16);
            return 0;
        }
        return bpf_skb_load_bytes(skb, off + at, k->addr, 16) < 0 ? -1 : 0;
    }
    default:
        return -1;
    }
}

#endif
