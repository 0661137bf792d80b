#!/usr/bin/env bash
# Status is current with one-way traffic on real wireguard-go: one datagram to B
# that B never answers (so no first reply proves the wake) shows B Connected within 100 ms
# of its handshake, not after the one-second poll it used to wait for. The wake's
# latency (trigger to Connected, in the trace) is the bound: the handshake is part of it.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 3
start_agent
TRACE="$LAB_DIR/trace.json"
nb_start_trace "$TRACE"

rounds=3
for ((r = 1; r <= rounds; r++)); do
    udp_burst_check "$REMOTE_V4" 1 10
    wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
    nb_cli peer idle "$B_PUBKEY" >/dev/null
done
latencies=$(nb_trace_events "$TRACE" "$B_PUBKEY" '.event == "transition" and .to == "Connected"' | jq -r '.[].latency_ms')
n=$(wc -w <<<"$latencies")
((n == rounds)) || fail "$n wakes of B reached Connected in the trace, expected $rounds"
worst=$(tr ' ' '\n' <<<"$latencies" | sort -g | tail -1)
# The bound of the issue, for the whole wake (connector and handshake included): here it
# takes about 6 ms; before, the one-second poll made it 1.1 s.
awk -v w="$worst" 'BEGIN {exit !(w < 100)}' || fail "one-way wakes took up to $worst ms to show Connected: $(tr '\n' ' ' <<<"$latencies")"
pass "one-way traffic: B Connected $(tr '\n' ' ' <<<"$latencies")ms after the first datagram (worst $worst ms)"
stop_agent
