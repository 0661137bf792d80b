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
configure_side_a_by_hand
eager_baseline_checks wireguard-go
