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

# SIDE: trace peers --json of that side, in the background, subscribed before anything wakes.
start_trace() { nb_start_trace "$LAB_DIR/trace-$1.json" "$1"; }
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

peer_on() { # SIDE: the key of the other side's end, as that side's agent knows it
    if [[ $1 == a ]]; then echo "$B_PUBKEY"; else echo "$A_PUBKEY"; fi
}

make_idle() { # SIDE KEY
    local side=$1 key=$2 cli=nb_cli
    [[ $side == b ]] && cli=nb_cli_b
    check "peer idle on $side" "$cli" peer idle "$key"
    wait_for 10 "the peer to be Idle on $side" nb_state_is_on "$side" "$key" Idle
    [[ $(endpoint_on "$side" "$key") == "(none)" ]] ||
        fail "idle peer on $side still has endpoint $(endpoint_on "$side" "$key") in WireGuard"
    pass "peer Idle on $side with no endpoint"
}

# wake_across FROM OWN: both ends Idle, one ping from side FROM to the other side wakes the
# peer on both: the sender's agent by the packet, the receiver's by the remote talking.
# That remote wake needs no connector: the receiver's trace may hold only the trigger
# events and Connecting transitions of its OWN earlier wakes by its own packets (OWN of each).
wake_across() {
    local from=$1 own=$2 to=b addr=$REMOTE_V4
    [[ $from == b ]] && to=a addr=$A_V4
    local from_key to_key f=${from^^} t=${to^^}
    from_key=$(peer_on "$from")
    to_key=$(peer_on "$to")
    ping_check "$addr" "$from-to-$to"
    wait_for 10 "$t Connected on $f" nb_state_is_on "$from" "$from_key" Connected
    wait_for 10 "$f Connected on $t" nb_state_is_on "$to" "$to_key" Connected
    wait_for 5 "$f's trace: $t Connected (reason packet)" transition_to "$from" "$from_key" Connected packet
    wait_for 5 "$t's trace: $f Connected (reason remote)" transition_to "$to" "$to_key" Connected remote
    pass "$f -> $t: $t woken by the packet on $f, $f woken by the remote on $t"
    local triggers connectings
    triggers=$(count_events "$to" "$to_key" '.event == "trigger"')
    connectings=$(count_events "$to" "$to_key" '.to == "Connecting"')
    ((triggers == own && connectings == own)) || fail "$t's agent ran a wake of its own for a remote" \
        "wake: $triggers trigger and $connectings Connecting events, expected $own of each"
    pass "$t's wake was remote only (no trigger or Connecting of its own)"
}

start_agent
start_agent_b
wait_for 30 "A's 10 peers Idle" nb_state_is_on a "$B_PUBKEY" Idle
wait_for 30 "B's peer A Idle" nb_state_is_on b "$A_PUBKEY" Idle
[[ $(nb_cli_b status --json | jq -c '.counts | [.idle, .connecting, .connected]') == "[1,0,0]" ]] ||
    fail "agent B's counts are not 1 Idle: $(nb_cli_b status --json | jq -c .counts)"
[[ $(endpoint_on a "$B_PUBKEY") == "(none)" && $(endpoint_on b "$A_PUBKEY") == "(none)" ]] ||
    fail "an idle peer has an endpoint in WireGuard (A: $(endpoint_on a "$B_PUBKEY"), B: $(endpoint_on b "$A_PUBKEY"))"
pass "both agents start with the peer Idle and no endpoint"
start_trace a
start_trace b

# A -> B: A's agent wakes B (packet); B's agent sees A talking first. B never woke A itself.
wake_across a 0

# Both back to Idle; now B -> A: the roles swap. A's only wake of B by its own packets so
# far was the first ping's.
make_idle a "$B_PUBKEY"
make_idle b "$A_PUBKEY"
wake_across b 1
# Each agent counted two wakes of its peer: one of its own, one remote.
[[ $(wakes_on a "$B_PUBKEY") == 2 && $(wakes_on b "$A_PUBKEY") == 2 ]] ||
    fail "wakes: A's peer B $(wakes_on a "$B_PUBKEY"), B's peer A $(wakes_on b "$A_PUBKEY"); expected 2 each"
pass "both agents counted 2 wakes"

# TCP in the B -> A direction, both Idle again: the SYN must not be retransmitted.
make_idle a "$B_PUBKEY"
make_idle b "$A_PUBKEY"
tcp_connect_check "$A_V4" b-to-a
wait_for 10 "B Connected on A after the TCP connect" nb_state_is_on a "$B_PUBKEY" Connected
wait_for 10 "A Connected on B after the TCP connect" nb_state_is_on b "$A_PUBKEY" Connected
pass "B -> A TCP: both sides Connected"

stop_agent_b
stop_agent
# Each side is left an ordinary eager WireGuard interface with its peer's endpoint.
[[ $(endpoint_on b "$A_PUBKEY") == "$UNDERLAY_A:51820" && $(endpoint_on a "$B_PUBKEY") == "$UNDERLAY_B:51820" ]] ||
    fail "endpoints after stop: B's peer A $(endpoint_on b "$A_PUBKEY"), A's peer B $(endpoint_on a "$B_PUBKEY")"
pass "both agents restored their peer's endpoint on exit"
ping_check "$REMOTE_V4"
