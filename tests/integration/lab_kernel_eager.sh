#!/usr/bin/env bash
# The eager baseline on kernel WireGuard: lab_eager.sh with both sides kernel devices
# (lab.sh --wg kernel for B, side A configured by hand, every endpoint set, no agent).
# Proves the lab and its traffic checks on kernel WireGuard. Skips where the kernel has
# no WireGuard (this CI host); the qemu kernel matrix (vagrant/qemu) runs it.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_privileges
require_kernel_wireguard
lab_up --peers 1000 --wg kernel

echo "--- side A by hand: kernel WireGuard $WG_A in $NS_A"
check "ip link add $WG_A type wireguard" ip -n "$NS_A" link add "$WG_A" type wireguard
configure_side_a_by_hand

# Both devices are the kernel's, not tun devices of a wireguard-go left running.
for side in "$NS_A $WG_A" "$NS_B $WG_B"; do
    read -r ns dev <<<"$side"
    ip -n "$ns" -d link show "$dev" | grep -qw wireguard || fail "$dev in $ns is not a kernel WireGuard device"
    [[ -z $(ip netns pids "$ns") ]] || fail "processes run in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
done
pass "both sides are kernel WireGuard devices, no process in either namespace"

eager_baseline_checks "kernel WireGuard"
