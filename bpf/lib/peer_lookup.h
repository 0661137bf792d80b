/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Address -> peer slot, with WireGuard's longest-prefix-match semantics. */
#ifndef NB_BPF_PEER_LOOKUP_H
#define NB_BPF_PEER_LOOKUP_H

#include "lib/maps.h"
#include "lib/config.h"

/* A /32 or /128 is the longest possible match, so an exact hit ends the search;
 * only a miss needs the trie. */
static __always_inline __u32 *nb_lookup_peer_id(const struct nb_host_key *k)
{
    __u32 *id = bpf_map_lookup_elem(&nb_hosts, k);
    if (id || !nb_have_prefixes)
        return id;

    struct nb_lpm_key lk = {};
    lk.prefixlen = 8 + (k->family == NB_AF_INET ? 32 : 128);
    lk.family = k->family;
    __builtin_memcpy(lk.addr, k->addr, 16);
    return bpf_map_lookup_elem(&nb_prefixes, &lk);
}

static __always_inline struct nb_peer_slot *nb_lookup_slot(const struct nb_host_key *k, __u32 *peer_id)
{
    __u32 *id = nb_lookup_peer_id(k);
    if (!id)
        return 0;
    *peer_id = *id;
    struct nb_peer_slot *slot = bpf_map_lookup_elem(&nb_slots, id);
    if (!slot || slot->state == NB_SLOT_UNUSED)
        return 0;
    return slot;
}

#endif
