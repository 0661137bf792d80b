/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address -> peer slot, with WireGuard's longest-prefix-match semantics. */
#ifndef NB_BPF_PEER_LOOKUP_H
#define NB_BPF_PEER_LOOKUP_H

#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/config.h"

/* The peer whose allowed IPs hold `k` most specifically. A /32 or /128 is the longest
 * possible match, so an exact hit ends the search; only a miss needs the trie. Returns
 * 0 and sets *peer_id, or -1. */
static __always_inline int nb_lookup_peer_id(const struct nb_host_key *k, __u32 *peer_id)
{
    if (nb_dense4_size && k->family == NB_AF_INET) {
        __u32 a;
        __builtin_memcpy(&a, k->addr, 4);
        __u32 off = bpf_ntohl(a) - nb_dense4_base;
        if (off < nb_dense4_size) {
            /* In the range, the array is the only place for host routes. */
            __u64 *v = bpf_map_lookup_elem(&nb_dense4, &off);
            if (v && *v) {
                *peer_id = (__u32)(*v - 1);
                return 0;
            }
            goto prefixes;
        }
    }
    __u32 *id = bpf_map_lookup_elem(&nb_hosts, k);
    if (id) {
        *peer_id = *id;
        return 0;
    }
prefixes:
    if (!nb_have_prefixes)
        return -1;
    struct nb_lpm_key lk = {};
    lk.prefixlen = 8 + (k->family == NB_AF_INET ? 32 : 128);
    lk.family = k->family;
    __builtin_memcpy(lk.addr, k->addr, 16);
    id = bpf_map_lookup_elem(&nb_prefixes, &lk);
    if (!id)
        return -1;
    *peer_id = *id;
    return 0;
}

static __always_inline struct nb_peer_slot *nb_lookup_slot(const struct nb_host_key *k, __u32 *peer_id)
{
    if (nb_lookup_peer_id(k, peer_id) < 0)
        return 0;
    struct nb_peer_slot *slot = bpf_map_lookup_elem(&nb_slots, peer_id);
    if (!slot || slot->state == NB_SLOT_UNUSED)
        return 0;
    return slot;
}

#endif
