#!/usr/bin/env bash
# Two lazy agents, one on each side, both starting Idle: traffic in either direction
# works on the first packet. The sender's agent wakes its peer through the connector;
# the receiver's agent, whose peer is Idle too (no endpoint, slot HOLD), must let the
# first packet in and the reply out, and report the peer Connected with reason
# "remote" (its ingress program saw the remote talking; no connector ran).
#
# Side A: the lab's agent with 10 peers (B plus 9 dummies). Side B: a second agent on
# B's existing WireGuard interface with $B_CONF (A as its only peer, with A's endpoint).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 10

A_V4=10.100.0.1

state_on() { # SIDE(a|b) KEY: the peer's state in that side's agent
    local cli=nb_cli
    [[ $1 == b ]] && cli=nb_cli_b
    "$cli" status -d --json | jq -r --arg k "$2" '.peers[] | select(.public_key == $k) | .state'
}
state_is() { [[ $(state_on "$1" "$2") == "$3" ]]; }
endpoint_on() { # SIDE KEY: the peer's endpoint in that side's WireGuard
    local ns=$NS_A dev=$WG_A
    [[ $1 == b ]] && ns=$NS_B dev=$WG_B
    ip netns exec "$ns" wg show "$dev" endpoints | awk -v k="$2" '$1 == k {print $2}'
}
wakes_on() { # SIDE KEY
    local cli=nb_cli
    [[ $1 == b ]] && cli=nb_cli_b
    "$cli" status -d --json | jq -r --arg k "$2" '.peers[] | select(.public_key == $k) | .wakes'
}

# trace peers --json of one side, in the background, subscribed before anything wakes.
start_trace() { # SIDE
    local side=$1 ns=$NS_A dev=$WG_A run=$AGENT_RUN_DIR
    [[ $side == b ]] && ns=$NS_B dev=$WG_B run=$AGENT_B_RUN_DIR
    local out="$LAB_DIR/trace-$side.json" err="$LAB_DIR/trace-$side.err"
    ip netns exec "$ns" "$NBAGENT" trace peers -i "$dev" --run-dir "$run" --json \
        >"$out" 2>"$err" </dev/null &
    local pid=$!
    NB_BG_PIDS+=("$pid")
    NB_SHOW_ON_FAILURE+=("$out" "$err")
    local deadline=$((SECONDS + 30))
    until grep -q "tracing peers" "$err"; do
        kill -0 "$pid" 2>/dev/null || fail "trace on $side exited: $(cat "$err")"
        ((SECONDS < deadline)) || fail "trace on $side not subscribed within 30 s"
        sleep 0.1
    done
    pass "trace on side $side subscribed"
}
# SIDE KEY JQ-FILTER: that side's trace has an event for KEY matching the filter.
trace_has() {
    jq -s -e --arg k "$2" "any(.[]; .peer == \$k and ($3))" "$LAB_DIR/trace-$1.json" >/dev/null
}
transition_to() { # SIDE KEY TO REASON
    trace_has "$1" "$2" ".event == \"transition\" and .to == \"$3\" and .reason == \"$4\""
}
count_events() { # SIDE KEY JQ-FILTER: how many events for KEY match
    local i out
    # A last line the client is still writing is not JSON yet: try again.
    for ((i = 0; i < 20; i++)); do
        out=$(jq -s --arg k "$2" "[.[] | select(.peer == \$k and ($3))] | length" \
            "$LAB_DIR/trace-$1.json" 2>&1) && {
            echo "$out"
            return 0
        }
        sleep 0.05
    done
    # Called in $(...): fail would only end the subshell; the failed assignment ends the test.
    echo "FAIL: trace of side $1 is not JSON lines: $out" >&2
    return 1
}

make_idle() { # SIDE KEY
    local side=$1 key=$2 cli=nb_cli
    [[ $side == b ]] && cli=nb_cli_b
    check "peer idle on $side" "$cli" peer idle "$key"
    wait_for 10 "the peer to be Idle on $side" state_is "$side" "$key" Idle
    [[ $(endpoint_on "$side" "$key") == "(none)" ]] ||
        fail "idle peer on $side still has endpoint $(endpoint_on "$side" "$key") in WireGuard"
    pass "peer Idle on $side with no endpoint"
}

start_agent
start_agent_b
wait_for 30 "A's 10 peers Idle" state_is a "$B_PUBKEY" Idle
wait_for 30 "B's peer A Idle" state_is b "$A_PUBKEY" Idle
[[ $(nb_cli_b status --json | jq -c '.counts | [.idle, .connecting, .connected]') == "[1,0,0]" ]] ||
    fail "agent B's counts are not 1 Idle: $(nb_cli_b status --json | jq -c .counts)"
[[ $(endpoint_on a "$B_PUBKEY") == "(none)" && $(endpoint_on b "$A_PUBKEY") == "(none)" ]] ||
    fail "an idle peer has an endpoint in WireGuard (A: $(endpoint_on a "$B_PUBKEY"), B: $(endpoint_on b "$A_PUBKEY"))"
pass "both agents start with the peer Idle and no endpoint"
start_trace a
start_trace b

# A -> B: A's agent wakes B (packet); B's agent sees A talking first.
ping_check "$REMOTE_V4"
wait_for 10 "B Connected on A" state_is a "$B_PUBKEY" Connected
wait_for 10 "A Connected on B" state_is b "$A_PUBKEY" Connected
wait_for 5 "A's trace: B Connected (reason packet)" transition_to a "$B_PUBKEY" Connected packet
wait_for 5 "B's trace: A Connected (reason remote)" transition_to b "$A_PUBKEY" Connected remote
pass "A -> B: B woken by the packet on A, A woken by the remote on B"
# The remote wake on B needs no connector: no trigger, no Connecting.
n=$(count_events b "$A_PUBKEY" '.event == "trigger" or .to == "Connecting"')
((n == 0)) || fail "B's agent ran a wake of its own ($n trigger/Connecting events) for a remote wake"
pass "B's wake was remote only (no trigger, no Connecting)"

# Both back to Idle; now B -> A: the roles swap.
make_idle a "$B_PUBKEY"
make_idle b "$A_PUBKEY"
echo "--- from B: ping -c 1 -W 5 $A_V4"
err="$LAB_DIR/ping-b.err"
rc=0
in_b ping -c 1 -W 5 "$A_V4" 2>"$err" || rc=$?
if ((rc != 0)) || [[ -s $err ]]; then
    cat "$err"
    fail "single ping from B to $A_V4 (exit $rc, stderr above)"
fi
pass "first ping from B to A answered"
wait_for 10 "A Connected on B" state_is b "$A_PUBKEY" Connected
wait_for 10 "B Connected on A" state_is a "$B_PUBKEY" Connected
wait_for 5 "B's trace: A Connected (reason packet)" transition_to b "$A_PUBKEY" Connected packet
wait_for 5 "A's trace: B Connected (reason remote)" transition_to a "$B_PUBKEY" Connected remote
pass "B -> A: A woken by the packet on B, B woken by the remote on A"
# A's only wake of B so far by its own packets was the first ping's.
n=$(count_events a "$B_PUBKEY" '.event == "trigger"')
((n == 1)) || fail "A's trace has $n trigger events for B, expected 1 (the A -> B ping)"
pass "A's second wake was remote only"
# Each agent counted two wakes of its peer: one of its own, one remote.
[[ $(wakes_on a "$B_PUBKEY") == 2 && $(wakes_on b "$A_PUBKEY") == 2 ]] ||
    fail "wakes: A's peer B $(wakes_on a "$B_PUBKEY"), B's peer A $(wakes_on b "$A_PUBKEY"); expected 2 each"
pass "both agents counted 2 wakes"

# TCP in the B -> A direction, both Idle again: the SYN must not be retransmitted.
make_idle a "$B_PUBKEY"
make_idle b "$A_PUBKEY"
tcp_connect_check "$A_V4" b-to-a
wait_for 10 "B Connected on A after the TCP connect" state_is a "$B_PUBKEY" Connected
wait_for 10 "A Connected on B after the TCP connect" state_is b "$A_PUBKEY" Connected
pass "B -> A TCP: both sides Connected"

stop_agent_b
stop_agent
# Each side is left an ordinary eager WireGuard interface with its peer's endpoint.
[[ $(endpoint_on b "$A_PUBKEY") == "$UNDERLAY_A:51820" && $(endpoint_on a "$B_PUBKEY") == "$UNDERLAY_B:51820" ]] ||
    fail "endpoints after stop: B's peer A $(endpoint_on b "$A_PUBKEY"), A's peer B $(endpoint_on a "$B_PUBKEY")"
pass "both agents restored their peer's endpoint on exit"
ping_check "$REMOTE_V4"
