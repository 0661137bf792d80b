/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reads the inner IP addresses of a packet on a layer-3 device. */
#ifndef NB_BPF_PARSE_H
#define NB_BPF_PARSE_H

#include <linux/bpf.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>

#include "lazy_peer_kern_user.h"
#include "lib/config.h"

struct nb_addrs {
    struct nb_host_key src;
    struct nb_host_key dst;
};

static __always_inline void nb_copy4(__u8 *to, const __u8 *from)
{
    __builtin_memcpy(to, from, 4);
}

static __always_inline void nb_copy16(__u8 *to, const __u8 *from)
{
    __builtin_memcpy(to, from, 16);
}

/* Fills `a` (zeroed by the caller) from the IP header. Returns 0 for IPv4 and
 * IPv6 packets, -1 for anything else (those are never a peer's concern). */
static __always_inline int nb_parse_addrs(struct __sk_buff *skb, struct nb_addrs *a)
{
    void *data = (void *)(long)skb->data;
    void *data_end = (void *)(long)skb->data_end;
    __u32 off = nb_l2_len;
    __u8 *p = data + off;

    if ((void *)(p + 1) > data_end)
        return -1;
    switch (*p >> 4) {
    case 4: {
        struct iphdr *ip = (void *)p;
        if ((void *)(ip + 1) > data_end) {
            struct iphdr tmp;
            if (bpf_skb_load_bytes(skb, off, &tmp, sizeof(tmp)) < 0)
                return -1;
            nb_copy4(a->src.addr, (const __u8 *)&tmp.saddr);
            nb_copy4(a->dst.addr, (const __u8 *)&tmp.daddr);
        } else {
            nb_copy4(a->src.addr, (const __u8 *)&ip->saddr);
            nb_copy4(a->dst.addr, (const __u8 *)&ip->daddr);
        }
        a->src.family = a->dst.family = NB_AF_INET;
        return 0;
    }
    case 6: {
        struct ipv6hdr *ip6 = (void *)p;
        if ((void *)(ip6 + 1) > data_end) {
            struct ipv6hdr tmp;
            if (bpf_skb_load_bytes(skb, off, &tmp, sizeof(tmp)) < 0)
                return -1;
            nb_copy16(a->src.addr, (const __u8 *)&tmp.saddr);
            nb_copy16(a->dst.addr, (const __u8 *)&tmp.daddr);
        } else {
            nb_copy16(a->src.addr, (const __u8 *)&ip6->saddr);
            nb_copy16(a->dst.addr, (const __u8 *)&ip6->daddr);
        }
        a->src.family = a->dst.family = NB_AF_INET6;
        return 0;
    }
    default:
        return -1;
    }
}

#endif
