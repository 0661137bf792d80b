#!/usr/bin/env bash
# Routes via the interface follow the map, across restarts: a peer removed by `apply`
# takes its route along even when the agent adopted the interface (an earlier run made
# the route, or wg-quick did), a route nbagent left behind for a peer that is gone is
# removed at start (its "proto 110" mark says whose it is), and the operator's own routes
# via the interface are never touched.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 6

routes() { in_a ip route show dev "$WG_A" "$@"; }
has_route() { routes | grep "^$1 " >/dev/null; }
# without_peer N FILE: the lab's config without its N-th [Peer] block.
without_peer() {
    awk -v n="$1" '/^\[Peer\]/ {p++} p != n' "$2"
}

start_agent
has_route 10.101.0.3 || fail "no route for the 3rd dummy peer's 10.101.0.3"
routes proto 110 | grep "^10\.101\.0\.3 " >/dev/null || fail "the agent's route lacks its mark: $(routes | grep 10.101.0.3)"
pass "the agent's routes carry proto 110: $(routes proto 110 | wc -l) of them"
stop_agent

# What a crashed run could leave behind, the operator's route, and one made by wg-quick.
in_a ip route add 10.199.0.1/32 dev "$WG_A" proto 110
in_a ip route add 10.198.0.1/32 dev "$WG_A" proto static
in_a ip route replace 10.101.0.4/32 dev "$WG_A" proto boot
start_agent --adopt
! has_route 10.199.0.1 || fail "the left-over route 10.199.0.1 (proto 110, no peer) survived the start"
has_route 10.198.0.1 || fail "the operator's route 10.198.0.1 was removed: $(routes | tr "\n" ";") log: $(grep -i route "$AGENT_LOG")"
has_route 10.101.0.3 || fail "a peer's route was removed at start"
pass "start: the left-over route is gone, the operator's route and the peers' routes stay"

# A's 1st [Peer] is B; the dummies follow from 10.101.0.1, so the 4th and 5th blocks are
# 10.101.0.3 and 10.101.0.4 (checked below, not assumed).
conf="$LAB_DIR/routes.conf"
without_peer 5 "$A_CONF" | without_peer 4 /dev/stdin >"$conf"
grep -q "10\.101\.0\.[34]/32" "$conf" && fail "the trimmed config still has 10.101.0.3 or .4"
grep -q "10\.101\.0\.2/32" "$conf" || fail "the trimmed config lost 10.101.0.2"
nb_cli apply -c "$conf" | grep "2 removed" >/dev/null || fail "apply did not remove 2 peers"
! has_route 10.101.0.3 || fail "route for removed peer 10.101.0.3 (made by the earlier run) is still there"
! has_route 10.101.0.4 || fail "route for removed peer 10.101.0.4 (made by wg-quick) is still there"
has_route 10.101.0.2 || fail "route for the kept peer 10.101.0.2 is gone"
has_route 10.198.0.1 || fail "the operator's route 10.198.0.1 was removed by apply"
pass "apply after adoption: removed peers' routes gone (either maker), others kept"
stop_agent
echo "routes: $NB_CHECKS_PASSED checks passed"
