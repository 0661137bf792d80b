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
# wg setconf takes only WireGuard's own keys: drop wg-quick's Address line.
grep -v '^[[:space:]]*Address[[:space:]]*=' "$A_CONF" >"$LAB_DIR/a.wg"
check "wg setconf with $LAB_PEERS peers" in_a wg setconf "$WG_A" "$LAB_DIR/a.wg"
ip -n "$NS_A" addr add 10.100.0.1/16 dev "$WG_A"
ip -n "$NS_A" addr add fd10:100::1/64 dev "$WG_A" nodad
ip -n "$NS_A" link set "$WG_A" up
ip -n "$NS_A" route add 10.200.0.0/24 dev "$WG_A"
ip -n "$NS_A" route add fd10:200::/64 dev "$WG_A"

# Both devices are the kernel's, not tun devices of a wireguard-go left running.
for side in "$NS_A $WG_A" "$NS_B $WG_B"; do
    read -r ns dev <<<"$side"
    ip -n "$ns" -d link show "$dev" | grep -qw wireguard || fail "$dev in $ns is not a kernel WireGuard device"
    [[ -z $(ip netns pids "$ns") ]] || fail "processes run in $ns: $(ip netns pids "$ns" | tr '\n' ' ')"
done
pass "both sides are kernel WireGuard devices, no process in either namespace"

configured=$(in_a wg show "$WG_A" peers | wc -l)
((configured == LAB_PEERS)) || fail "kernel WireGuard has $configured peers, the config has $LAB_PEERS"
pass "kernel WireGuard holds all $configured peers"

ping_check "$REMOTE_V4"
ping_check "$REMOTE_V6"
ping_check "$ROUTED_V4"
ping_check "$ROUTED_V6"
udp_burst_check "$REMOTE_V4" 100 10
udp_burst_check "$REMOTE_V6" 100 10
tcp_connect_check "$REMOTE_V4"
tcp_connect_check "$REMOTE_V6"

# B learned A's endpoint by roaming: proof the handshake ran over the underlay.
endpoint=$(in_b wg show "$WG_B" endpoints | awk '{print $2}')
[[ $endpoint == "$UNDERLAY_A:51820" ]] || fail "B sees A at '$endpoint', expected $UNDERLAY_A:51820"
pass "B learned A's endpoint $endpoint"
