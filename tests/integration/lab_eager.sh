#!/usr/bin/env bash
# The eager baseline: the lab with 1000 peers and side A configured by hand with plain
# wireguard-go (every endpoint set, no agent). Proves the lab and the traffic checks
# that lazy_e2e.sh later runs against the agent.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_privileges
lab_up --peers 1000

echo "--- side A by hand: wireguard-go $WG_A in $NS_A"
ip netns exec "$NS_A" setsid wireguard-go -f "$WG_A" >"$LAB_DIR/wireguard-go-a.log" 2>&1 </dev/null &
wait_for 10 "UAPI socket of $WG_A" test -S "/var/run/wireguard/$WG_A.sock"
# wg setconf takes only WireGuard's own keys: drop wg-quick's Address line.
grep -v '^[[:space:]]*Address[[:space:]]*=' "$A_CONF" >"$LAB_DIR/a.wg"
check "wg setconf with $LAB_PEERS peers" in_a wg setconf "$WG_A" "$LAB_DIR/a.wg"
ip -n "$NS_A" addr add 10.100.0.1/16 dev "$WG_A"
ip -n "$NS_A" addr add fd10:100::1/64 dev "$WG_A" nodad
ip -n "$NS_A" link set "$WG_A" up
ip -n "$NS_A" route add 10.200.0.0/24 dev "$WG_A"
ip -n "$NS_A" route add fd10:200::/64 dev "$WG_A"

configured=$(in_a wg show "$WG_A" peers | wc -l)
((configured == LAB_PEERS)) || fail "wireguard-go has $configured peers, the config has $LAB_PEERS"
pass "wireguard-go holds all $configured peers"

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
