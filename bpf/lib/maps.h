/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps of the lazy-peer programs. Sizes here are defaults; the loader sets the
 * real ones from the agent's options before loading. */
#ifndef NB_BPF_MAPS_H
#define NB_BPF_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lazy_peer_kern_user.h"

/* Host routes: exact match, memory grows with use (no prealloc). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __type(key, struct nb_host_key);
    __type(value, __u32);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} nb_hosts SEC(".maps");

/* IPv4 host routes in the dense range, by offset from nb_dense4_base: peer id + 1, 0 for
 * none. Preallocated (8 bytes per address), mmap-able so user space fills it without a
 * syscall per route. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, __u64);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);
} nb_dense4 SEC(".maps");

/* Prefixes (routed subnets): longest-prefix match. */
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __type(key, struct nb_lpm_key);
    __type(value, __u32);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
} nb_prefixes SEC(".maps");

/* Peer slots by peer id; user space mmaps this array. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, struct nb_peer_slot);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_MMAPABLE);
} nb_slots SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, NB_DEFAULT_RINGBUF_BYTES);
} nb_events SEC(".maps");

/* Staging area for one held packet: ringbuf_output takes a variable length,
 * reserve does not, so the copy is built here first. Up to 64 KiB does not fit a
 * per-CPU value (32 KiB at most), so this is a plain array with one entry per possible
 * CPU, indexed by the current one: tc programs run with bottom halves off, so nothing
 * else on this CPU uses the entry meanwhile. The loader sets max_entries. */
struct nb_scratch {
    struct nb_event ev;
    __u8 data[NB_MAX_HELD_PKT_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __type(key, __u32);
    __type(value, struct nb_scratch);
    __uint(max_entries, 1);
} nb_scratch_map SEC(".maps");

#endif
