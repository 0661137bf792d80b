#!/usr/bin/env bash
# A large TCP write is the first traffic to an idle peer. TCP hands the device one GSO
# super-packet of up to 64 KiB (its window allowing); the egress program holds it whole
# and the agent cuts it into the segments the device would have sent, because its
# re-injection socket refuses anything above the MTU. Before this, a held packet over
# 9216 bytes was dropped, and TCP had to retransmit it after a timeout.
#
# A TCP connection from A to B is opened and warmed (1 MiB, so the window is wide and
# slow start after idle is off), B is made idle under it, then A writes 64 KiB in one
# send(). Checked: every byte arrives intact and is acknowledged; B's peer shows no
# dropped packet; the agent cut at least one super-packet (status .gso_split) and could
# cut all (.gso_unsplit 0).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 8

WARMUP=$((1 << 20)) WRITE=65536
GO="$LAB_DIR/gso.go"
b_has_no_endpoint() { [[ $(in_a wg show "$WG_A" endpoints | awk -v k="$B_PUBKEY" '$1 == k {print $2}') == "(none)" ]]; }

start_agent
TRIGGER=$(nb_cli status --json | jq -r .trigger)
[[ $TRIGGER == bpf ]] || skip "the agent runs the $TRIGGER engine; GSO super-packets are held by the BPF one"
# Kept windows across the idle gap: the held write is then as large as TCP makes it.
in_a sysctl -qw net.ipv4.tcp_slow_start_after_idle=0

nb_next_port
SINK_OUT="$LAB_DIR/sink.out" WRITER_OUT="$LAB_DIR/writer.out"
NB_SHOW_ON_FAILURE+=("$SINK_OUT" "$WRITER_OUT")
nb_start_listener "$SINK_OUT" ip netns exec "$NS_B" "$NBTRAFFIC" tcp-sink --bind "$REMOTE_V4" \
    --port "$NB_PORT" --bytes $((WARMUP + WRITE)) --timeout-ms 60000
SINK_PID=$NB_LISTENER_PID
# The writer's "ready" comes once the warm-up was acknowledged (B is Connected by then).
nb_start_listener "$WRITER_OUT" ip netns exec "$NS_A" "$NBTRAFFIC" tcp-write --dst "$REMOTE_V4" \
    --port "$NB_PORT" --warmup "$WARMUP" --bytes "$WRITE" --go-file "$GO" --timeout-ms 60000
WRITER_PID=$NB_LISTENER_PID
pass "connection to B warmed with $WARMUP bytes"

check "peer idle B under the open connection" nb_cli peer idle "$B_PUBKEY"
wait_for 10 "B to be Idle" nb_state_is "$B_PUBKEY" Idle
wait_for 10 "B's endpoint to be cleared" b_has_no_endpoint
dropped_before=$(nb_peer_field "$B_PUBKEY" dropped)
held_before=$(nb_peer_field "$B_PUBKEY" held)
split_before=$(nb_cli status --json | jq .gso_split)
pass "B is Idle with no endpoint (held $held_before, dropped $dropped_before)"

touch "$GO"
rc=0
wait "$WRITER_PID" || rc=$?
cat "$WRITER_OUT"
((rc == 0)) || fail "the $WRITE-byte write was not acknowledged (exit $rc)"
rc=0
wait "$SINK_PID" || rc=$?
cat "$SINK_OUT"
((rc == 0)) || fail "B did not receive the stream intact (exit $rc)"
pass "the $WRITE-byte write to idle B arrived intact and was acknowledged"

st=$(nb_cli status -d --json)
b=$(jq -c --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k)' <<<"$st")
echo "B: $(jq -c '{state, wakes, held, dropped}' <<<"$b"); gso_split $(jq .gso_split <<<"$st"), gso_unsplit $(jq .gso_unsplit <<<"$st")"
held=$(jq .held <<<"$b") dropped=$(jq .dropped <<<"$b")
((held > held_before)) || fail "nothing was held for B: the write did not go through the hold path"
((dropped == dropped_before)) || fail "$((dropped - dropped_before)) packets to B were dropped (held $((held - held_before)))"
(($(jq .gso_unsplit <<<"$st") == 0)) || fail "a held super-packet could not be cut"
(($(jq .gso_split <<<"$st") > split_before)) ||
    fail "no GSO super-packet was held (gso_split $split_before -> $(jq .gso_split <<<"$st")): the test did not test GSO"
pass "held $((held - held_before)) reports for B, 0 dropped, $(($(jq .gso_split <<<"$st") - split_before)) super-packets cut"
