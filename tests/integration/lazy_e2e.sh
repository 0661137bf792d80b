#!/usr/bin/env bash
# The acceptance scenario: nbagent with 1000 lazy peers, one of them the real remote B.
# Every first packet to an idle peer must get through on the first try (ping, UDP burst
# in order, TCP without a SYN retransmission), over IPv4, IPv6 and a routed prefix; on
# SIGTERM the agent leaves an eager interface behind, and a new agent adopts it.
#
# Reads from the agent: `status -d --json` ({"counts":{...},"peers":[{"public_key",
# "state",...}]}) and `trace peers --json` (one JSON event per line:
# {"event":"trigger","peer":KEY,...} and {"event":"transition","peer":KEY,"from","to"}).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 1000

# IDLE CONNECTING CONNECTED, from the summary counts and the peer list alike.
counts_and_list_are() {
    local s
    s=$(nb_cli status -d --json) || return 1
    [[ $(jq -c '.counts | [.idle, .connecting, .connected]' <<<"$s") == "[$1,$2,$3]" ]] &&
        [[ $(jq '[.peers[] | select(.state == "Idle")] | length' <<<"$s") == "$1" ]] &&
        [[ $(jq '[.peers[] | select(.state == "Connected")] | length' <<<"$s") == "$3" ]]
}
b_endpoint() { in_a wg show "$WG_A" endpoints | awk -v k="$B_PUBKEY" '$1 == k {print $2}'; }
# Idle as the engine makes it: no endpoint (bpf), or the peer's own loopback listener (udp).
b_has_no_endpoint() {
    local ep
    ep=$(b_endpoint)
    if [[ $TRIGGER == udp ]]; then [[ $ep == 127.* ]]; else [[ $ep == "(none)" ]]; fi
}
# UDP listeners of the agent in A (the only thing bound to 127.1.0.0/16 there).
udp_listeners() { in_a ss -Huan src 127.1.0.0/16 | wc -l; }

# The trace so far has an event for B matching FILTER (jq -s: jq 1.6's -e only looks at
# the last input's result). A line that is not JSON is a failure of --json.
trace_has() {
    jq -s -e --arg k "$B_PUBKEY" "any(.[]; .peer == \$k and ($1))" "$LAB_DIR/trace.json" >/dev/null
}
trace_has_trigger() { trace_has '.event == "trigger"'; }
trace_has_transition() { trace_has ".event == \"transition\" and .from == \"$1\" and .to == \"$2\""; }

# Forces B back to Idle and checks it really is: no endpoint left in WireGuard, so the
# next packet must go through the agent's hold-and-wake path again.
make_b_idle() {
    check "peer idle $B_PUBKEY" nb_cli peer idle "$B_PUBKEY"
    wait_for 10 "B to be Idle" nb_state_is "$B_PUBKEY" Idle
    wait_for 10 "B's endpoint to be cleared" b_has_no_endpoint
    pass "B is Idle with no endpoint"
}

if [[ ${NB_TEST_NO_BPF:-} == 1 ]]; then
    # Forcing the BPF engine where bpf() fails is an error that says so, and leaves
    # nothing behind (the lab's A has no interface until the agent makes it).
    rc=0
    in_a "$NB_NO_BPF" "$NBAGENT" run -i "$WG_A" --run-dir "$AGENT_RUN_DIR" -c "$A_CONF" \
        --trigger bpf >"$LAB_DIR/forced_bpf.log" 2>&1 || rc=$?
    cat "$LAB_DIR/forced_bpf.log"
    ((rc != 0)) || fail "--trigger bpf without BPF exited 0"
    grep -q -- "--trigger bpf: loading BPF programs: Function not implemented" "$LAB_DIR/forced_bpf.log" ||
        fail "--trigger bpf without BPF: the error does not name the cause"
    ! in_a ip link show "$WG_A" >/dev/null 2>&1 || fail "the failed start left $WG_A behind"
    pass "--trigger bpf without BPF: exit $rc, the cause named, no interface left behind"
fi

start_agent
wait_for 30 "1000 peers Idle" counts_and_list_are 1000 0 0
pass "all 1000 peers Idle after start"
TRIGGER=$(nb_cli status --json | jq -r .trigger)
# NB_EXPECT_TRIGGER: the engine the agent must have picked (bpf, or udp without BPF).
if [[ -n ${NB_EXPECT_TRIGGER:-} ]]; then
    [[ $TRIGGER == "$NB_EXPECT_TRIGGER" ]] ||
        fail "trigger engine is '$TRIGGER', expected '$NB_EXPECT_TRIGGER' ($(nb_cli status --json | jq -c '{trigger, trigger_reason}'))"
    pass "trigger engine $TRIGGER, reason: '$(nb_cli status --json | jq -r .trigger_reason)'"
fi
b_has_no_endpoint || fail "idle B has endpoint $(b_endpoint) in WireGuard (trigger $TRIGGER)"
pass "idle peers have no real endpoint in WireGuard (B: $(b_endpoint), trigger $TRIGGER)"
if [[ $TRIGGER == udp ]]; then
    # WireGuard flushes its handshake queue while new packets arrive; only the BPF engine
    # holds them back meanwhile (docs/design.md, "The UDP trigger engine").
    NB_BURST_ORDER=any
    n=$(udp_listeners)
    ((n == 1000)) || fail "$n UDP listeners for 1000 idle peers"
    addrs=$(in_a wg show "$WG_A" endpoints | awk '{split($2, a, ":"); print a[1]}' | sort -u | wc -l)
    pass "one UDP listener per idle peer: $n, on $addrs loopback address(es)"
fi

# The subscription must be in place before the wake, or the test would miss its events.
nb_start_trace "$LAB_DIR/trace.json"

ping_check "$REMOTE_V4"
wait_for 5 "B Connected, 999 Idle" counts_and_list_are 999 0 1
nb_state_is "$B_PUBKEY" Connected || fail "the connected peer is not B"
pass "B Connected, 999 peers still Idle"
if [[ $TRIGGER == udp ]]; then
    wait_for 5 "B's listener to close (999 left)" eval '(($(udp_listeners) == 999))'
    pass "B's listener closed once it connected: $(udp_listeners) left"
fi
wait_for 5 "a trigger event for B in the trace" trace_has_trigger
pass "trace has a trigger event for B"
wait_for 5 "Idle->Connecting for B in the trace" trace_has_transition Idle Connecting
pass "trace has B Idle->Connecting"
wait_for 5 "Connecting->Connected for B in the trace" trace_has_transition Connecting Connected
pass "trace has B Connecting->Connected"

make_b_idle
udp_burst_check "$REMOTE_V4" 100 10
# A stream that is still sending when the handshake completes (even under emulation):
# WireGuard then flushes its handshake queue, and nothing newer may overtake it.
make_b_idle
udp_burst_check "$REMOTE_V4" 120 300
make_b_idle
tcp_connect_check "$REMOTE_V4"

make_b_idle
ping_check "$REMOTE_V6"
make_b_idle
udp_burst_check "$REMOTE_V6" 100 10
make_b_idle
tcp_connect_check "$REMOTE_V6"

make_b_idle
ping_check "$ROUTED_V4"

stop_agent
nb_wait_pid "$NB_TRACE_PID" 10 || fail "trace client still running after the agent stopped"

# Without the agent the interface must be an ordinary eager WireGuard interface again.
with_endpoint=$(in_a wg show "$WG_A" endpoints | awk '$2 != "(none)" && $2 !~ /^127\./' | wc -l)
((with_endpoint == LAB_PEERS)) || fail "$with_endpoint of $LAB_PEERS peers have their endpoint back"
pass "all $LAB_PEERS endpoints restored after SIGTERM"
if [[ $TRIGGER == udp ]]; then
    n=$(udp_listeners)
    ((n == 0)) || fail "$n UDP listeners left after the agent stopped"
    pass "no UDP listener left after the agent stopped"
fi
ping_check "$REMOTE_V4"

# B just answered that ping: its live session is adopted Connected, the rest Idle.
start_agent --adopt
wait_for 30 "999 peers Idle and B Connected after adoption" counts_and_list_are 999 0 1
pass "adopted interface: 999 peers Idle, B (live session) Connected"
stop_agent
