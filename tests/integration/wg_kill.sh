#!/usr/bin/env bash
# wireguard-go killed (SIGKILL) under the agent, in a 50-peer lab with --connect-timeout 3s:
#  a. the agent started wireguard-go (the lab's A has no interface before it), and it is
#     killed during a wake (a dummy Connecting, B Connected): the loss is logged once, every
#     peer goes Idle, the agent starts wireguard-go again and re-adopts the new device: its
#     programs on the new ifindex only (tcx links, where the kernel has them), every peer
#     back with its allowed IPs, the key, port, address and routes back; B and the routed
#     subnet answer the first ping.
#  b. the operator started wireguard-go (the agent leaves restarting it to them), killed
#     while every peer is Idle: `status` says "wireguard: lost since ...", text and JSON;
#     the operator starts it again and the agent re-adopts it (clsact filters on the new
#     device, one per direction); killed again, SIGTERM: exit 0 with a warning, the state
#     file kept with every endpoint; a new agent from the config works.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
require_wireguard_go kill
lab_up --peers 50

TRACE="$LAB_DIR/trace.json"
DUMMY_KEY=$(nb_dummy_key)
DUMMY_V4=10.101.0.1

ifindex_a() { in_a cat "/sys/class/net/$WG_A/ifindex" 2>/dev/null; }
allowed_ips() { in_a wg show "$WG_A" allowed-ips | awk '{for (i = 2; i <= NF; i++) print $1, $i}' | sort; }
lost_lines() { grep -c "WireGuard on $WG_A lost" "$AGENT_LOG" || true; }
# The agent's tcx links, one line each: the ifindex they are attached to (0: detached).
agent_tcx_links() {
    local f
    for f in /proc/"$AGENT_PID"/fdinfo/*; do
        grep -q "^link_type:[[:space:]]*tcx" "$f" 2>/dev/null || continue
        awk '/^ifindex:/ {print $2}' "$f"
    done
}
clsact_filters() { # DIRECTION: our filters on side A's device
    in_a tc filter show dev "$WG_A" "$1" 2>/dev/null | grep -c "nb_$1" || true
}
device_is_back() { # the interface as the config has it
    [[ $(in_a wg show "$WG_A" public-key) == "$A_PUBKEY" ]] &&
        [[ $(in_a wg show "$WG_A" listen-port) == 51820 ]] &&
        in_a ip -4 addr show dev "$WG_A" | grep -q "inet 10.100.0.1/16" &&
        in_a ip route show dev "$WG_A" | grep -q "^10.200.0.0/24" &&
        [[ $(allowed_ips) == "$ips_before" ]]
}

# --- a. the agent's own wireguard-go, killed during a wake -------------------------------
mode=clsact
[[ $("$NBAGENT" features --json | jq -r .tcx.ok) == true ]] && mode=tcx
start_agent --connect-timeout 3s --attach "$mode"
# The UDP engine (NB_TEST_TRIGGER=udp) attaches nothing to check.
[[ $(nb_cli status --json | jq -r .trigger) == bpf ]] || mode=none
nb_start_trace "$TRACE"
ping_check "$REMOTE_V4"
wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
ips_before=$(allowed_ips)
[[ $(wc -l <<<"$ips_before") -ge 50 ]] || fail "WireGuard has only $(wc -l <<<"$ips_before") allowed IPs"
old_ifindex=$(ifindex_a)
if [[ $mode == tcx ]]; then
    [[ $(agent_tcx_links | sort | uniq -c | awk '{print $1, $2}') == "2 $old_ifindex" ]] ||
        fail "the agent's tcx links are not the 2 on ifindex $old_ifindex: $(agent_tcx_links | tr '\n' ' ')"
fi
WGPID=$(wg_go_pid_a) || fail "no wireguard-go for $WG_A in $NS_A"
in_a ping -c 1 -W 1 "$DUMMY_V4" >/dev/null 2>&1 &
NB_BG_PIDS+=($!)
wait_for 5 "the dummy Connecting" nb_state_is "$DUMMY_KEY" Connecting
kill -KILL "$WGPID"
pass "wireguard-go (pid $WGPID, started by the agent) killed while the dummy was Connecting"
wait_for 5 "the loss in the log" grep -q "WireGuard on $WG_A lost" "$AGENT_LOG"
pass "logged: $(grep -m1 "WireGuard on $WG_A lost" "$AGENT_LOG")"
has_lost_transition() {
    jq -s -e --arg k "$1" 'any(.[]; .peer == $k and .event == "transition" and .to == "Idle"
        and (.reason | startswith("WireGuard lost")))' "$TRACE" >/dev/null
}
wait_for 5 "B to go Idle with the loss" has_lost_transition "$B_PUBKEY"
wait_for 5 "the dummy to go Idle with the loss" has_lost_transition "$DUMMY_KEY"
pass "B (Connected) and the dummy (Connecting) went Idle: WireGuard lost"
wait_for 10 "a new wireguard-go" wg_go_pid_a
grep -q "starting wireguard-go for $WG_A again" "$AGENT_LOG" || fail "the log does not say the agent started wireguard-go again"
wait_for 10 "status to say WireGuard is ok" nb_wg_state_is ok
new_ifindex=$(ifindex_a)
[[ -n $new_ifindex && $new_ifindex != "$old_ifindex" ]] || fail "the device was not recreated (ifindex $old_ifindex -> '$new_ifindex')"
pass "the agent started wireguard-go again: ifindex $old_ifindex -> $new_ifindex, WireGuard ok"
[[ $(lost_lines) == 1 ]] || fail "the loss was logged $(lost_lines) times"
wait_for 5 "the device as configured" device_is_back
pass "re-adopted: key, port 51820, address, routed subnet and all $(wc -l <<<"$ips_before") allowed IPs back"
if [[ $mode == tcx ]]; then
    [[ $(agent_tcx_links | sort | uniq -c | awk '{print $1, $2}') == "2 $new_ifindex" ]] ||
        fail "the agent's tcx links are not the 2 on ifindex $new_ifindex: $(agent_tcx_links | tr '\n' ' ')"
    pass "tcx: the agent holds exactly 2 links, on the new ifindex $new_ifindex"
elif [[ $mode == clsact ]]; then
    [[ $(clsact_filters ingress) == 1 && $(clsact_filters egress) == 1 ]] || fail "clsact filters on the new device"
    pass "clsact: one filter per direction on the new device"
fi
counts=$(nb_cli status --json | jq -c .counts)
[[ $counts == '{"connected":0,"connecting":0,"idle":50}' ]] || fail "after the re-adoption: $counts"
wg_agrees || fail "agent and the new WireGuard disagree"
ping_check "$REMOTE_V4"
ping_check "$ROUTED_V4"
wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
pass "B and its routed subnet answered the first ping on the new device"
stop_agent

# --- b. the operator's wireguard-go, killed while every peer is Idle -----------------------
# The device exists now (the agent's last wireguard-go outlived it): not the agent's to restart.
start_agent --connect-timeout 3s --attach clsact
# B answered a ping just before: its live session is kept at start. Idle it for this part.
[[ $(nb_cli status --json | jq -c .counts) == '{"connected":1,"connecting":0,"idle":49}' ]] ||
    fail "at start: $(nb_cli status --json | jq -c .counts), expected B's live session Connected"
check "peer idle B" nb_cli peer idle "$B_PUBKEY"
[[ $(nb_cli status --json | jq -c .counts) == '{"connected":0,"connecting":0,"idle":50}' ]] ||
    fail "not all Idle after peer idle B"
WGPID=$(wg_go_pid_a) || fail "no wireguard-go for $WG_A in $NS_A"
kill -KILL "$WGPID"
pass "wireguard-go (pid $WGPID, not the agent's) killed while every peer is Idle"
wait_for 5 "status to say WireGuard is lost" nb_wg_state_is lost
text=$(nb_cli status) || fail "status failed"
grep -q "^wireguard: *lost since " <<<"$text" || fail "status text lacks 'wireguard: lost since': $text"
pass "status: $(grep '^wireguard:' <<<"$text")"
nb_cli status --json | jq -e '.wireguard.since != "" and (.wireguard.error | length > 0)' >/dev/null ||
    fail "status --json: .wireguard has no since or error"
sleep 2
! wg_go_pid_a >/dev/null || fail "the agent started the operator's wireguard-go itself"
nb_wg_state_is lost || fail "WireGuard is no longer lost with nothing started"
[[ $(lost_lines) == 1 ]] || fail "the loss was logged $(lost_lines) times"
pass "still lost 2 s later, logged once, nothing restarted by the agent"
echo "--- the operator starts wireguard-go $WG_A again"
in_a wireguard-go "$WG_A" >"$LAB_DIR/wireguard-go-a.log" 2>&1 || fail "wireguard-go did not start: $(cat "$LAB_DIR/wireguard-go-a.log")"
wait_for 10 "status to say WireGuard is ok" nb_wg_state_is ok
wait_for 5 "the device as configured" device_is_back
pass "re-adopted the operator's new device: key, port, address, routes, allowed IPs"
if [[ $(nb_cli status --json | jq -r .trigger) == bpf ]]; then
    [[ $(clsact_filters ingress) == 1 && $(clsact_filters egress) == 1 ]] ||
        fail "expected one clsact filter per direction, found $(clsact_filters ingress) and $(clsact_filters egress)"
    pass "clsact: one filter per direction on the new device"
fi
wg_agrees || fail "agent and the new WireGuard disagree"
ping_check "$REMOTE_V4"
WGPID=$(wg_go_pid_a) || fail "no wireguard-go for $WG_A in $NS_A"
kill -KILL "$WGPID"
wait_for 5 "status to say WireGuard is lost" nb_wg_state_is lost
pass "killed again: lost"
stop_agent_unrestored "SIGTERM with WireGuard gone"
state="$AGENT_RUN_DIR/$WG_A.peers.json"
n=$(jq '[.peers[] | select(.endpoint)] | length' "$state") || fail "no state file $state"
((n == 50)) || fail "the state file keeps $n endpoints, not 50"
pass "the state file keeps all 50 endpoints"
start_agent --connect-timeout 3s
ping_check "$REMOTE_V4"
stop_agent
