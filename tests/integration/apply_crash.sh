#!/usr/bin/env bash
# SIGKILL at each step of an apply (NB_FAULT_POINT, base/fault_point.hpp): after
# the state file was written, after the datapath changed, after WireGuard took the new
# map, after the routes followed. A restart with the new map converges to it: WireGuard
# holds exactly the new peers, every peer is in status and none is stuck Connecting, the
# added peer's route is there and the removed one's gone, one set of our programs is
# attached (clsact, whose filters outlive the process), and B (with a live session) is
# Connected.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 300

old_conf=$A_CONF
new_conf="$LAB_DIR/new.conf"
added_key=$(wg genkey | wg pubkey)
# The new map: the dummies with 10.101.0.3 and .4 gone (A's 4th and 5th [Peer] blocks:
# B is the 1st), one peer added.
awk '/^\[Peer\]/ {p++} p != 4 && p != 5' "$old_conf" >"$new_conf"
printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.252.0.1/32\nEndpoint = 192.0.2.99:51820\n' \
    "$added_key" >>"$new_conf"
grep -q "10\.101\.0\.[34]/32" "$new_conf" && fail "the new map still has 10.101.0.3 or .4"
new_peers=$(grep -c '^\[Peer\]' "$new_conf")

wg_keys() { in_a wg show "$WG_A" peers | sort; }
conf_keys() { awk '/^PublicKey/ {print $3}' "$1" | sort; }
has_route() { in_a ip route show dev "$WG_A" | grep "^$1 " >/dev/null; }

for point in apply:stored apply:datapath apply:wireguard apply:routes; do
    echo "=== SIGKILL at $point"
    A_CONF=$old_conf
    NB_FAULT_POINT=$point start_agent --attach clsact
    ping_check "$REMOTE_V4"
    rc=0
    nb_cli apply -c "$new_conf" >/dev/null 2>&1 || rc=$?
    ((rc != 0)) || fail "$point: the apply returned although the agent was to die"
    nb_wait_pid "$AGENT_PID" 10 || fail "$point: the agent did not die"
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
    pass "$point: the agent died there (the apply got no answer)"

    A_CONF=$new_conf
    NB_FAULT_POINT="" start_agent --attach clsact
    [[ $(wg_keys) == "$(conf_keys "$new_conf")" ]] || fail "$point: WireGuard's peers are not the new map's"
    wait_for 15 "no peer Connecting" eval '[[ $(nb_counts | cut -d" " -f2) == 0 ]]'
    read -r idle connecting connected < <(nb_counts)
    ((idle + connecting + connected == new_peers)) || fail "$point: status has $((idle + connecting + connected)) peers, the map $new_peers"
    [[ $(nb_cli status -d --json | jq -r --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k) | .state') == Connected ]] ||
        fail "$point: B (live session) is not Connected after the restart"
    has_route 10.252.0.1 || fail "$point: no route for the added peer"
    ! has_route 10.101.0.3 || fail "$point: the removed peer's route 10.101.0.3 is still there"
    # clsact filters outlive a SIGKILL (tcx links die with the process): what a restart
    # could duplicate.
    [[ $(nb_clsact_filters) == 2 ]] || fail "$point: $(nb_clsact_filters) programs on the device, expected ours: 2"
    pass "$point: the restart converged: $new_peers peers as the new map ($idle Idle, $connected Connected), routes follow, 2 programs"
    stop_agent
done
echo "apply_crash: $NB_CHECKS_PASSED checks passed"
