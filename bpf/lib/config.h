/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Load-time constants (frozen .rodata: the verifier prunes on them) and the
 * few globals user space writes while running. */
#ifndef NB_BPF_CONFIG_H
#define NB_BPF_CONFIG_H

#include <linux/types.h>

/* Bytes before the IP header: 0 on WireGuard and tun devices (layer 3),
 * 14 under BPF_PROG_TEST_RUN, which always builds an Ethernet frame. */
const volatile __u32 nb_l2_len = 0;
/* Packets held per peer before further ones are dropped. */
const volatile __u32 nb_max_held = NB_DEFAULT_MAX_HELD;
/* The dense IPv4 range: host routes for nb_dense4_base .. + nb_dense4_size - 1 (host
 * byte order) live in the nb_dense4 array, indexed by offset, instead of the hash map.
 * Overlay addresses are usually dense, and an array lookup is a bounds check where a
 * hash lookup hashes and compares. Size 0: no dense range. */
const volatile __u32 nb_dense4_base = 0;
const volatile __u32 nb_dense4_size = 0;

/* Cookie of the agent's re-injection socket: its packets are the held ones
 * coming back and must pass. 0 until the agent sets it (cookies start at 1). */
volatile __u64 nb_replay_cookie = 0;
/* Non-zero once any prefix (not /32 or /128) is installed: saves the trie
 * lookup for non-peer traffic on hosts without routed subnets. */
volatile __u32 nb_have_prefixes = 0;
/* Records the ring buffer refused: the agent compares it to detect overruns. */
volatile __u64 nb_ring_full = 0;
/* Written by nb_clock, which the agent runs to pair jiffies with CLOCK_MONOTONIC. */
volatile __u64 nb_clock_jiffies = 0;
volatile __u64 nb_clock_ns = 0;

#endif
