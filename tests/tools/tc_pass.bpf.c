// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Stands in for another tc user of the WireGuard device (tests/integration/tc_coexist.sh):
 * a direct-action filter that lets everything through. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int foreign_pass(struct __sk_buff *skb)
{
    (void)skb;
    return TC_ACT_OK;
}
