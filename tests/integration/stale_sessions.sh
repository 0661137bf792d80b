#!/usr/bin/env bash
# Sessions the remote still holds, on the engine NB_TEST_WG selects (the host runs
# wireguard-go; the kernel matrix runs it on kernel WireGuard):
#  a. Two lazy agents facing each other, A idling after 20 s, B after 15 min. Once A has
#     idled B, B's WireGuard still holds a valid session. Its next data must not be
#     dropped as unknown until B re-handshakes (~15 s): a burst of 30 datagrams from B
#     arrives whole at once, and A shows B Connected again (reason remote).
#  b. A steady stream from B (20 datagrams/s) through restarts of A's agent: stopped,
#     started adopting the interface, stopped, started with -c. A peer with a live
#     session at start is adopted Connected and left alone: every datagram arrives, in
#     order, with no gap over 1 s.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 4

A_V4=10.100.0.1
TRACE="$LAB_DIR/trace-a.json"
idled_by_inactivity() {
    nb_trace_events "$TRACE" "$B_PUBKEY" '.event == "transition" and .to == "Idle" and (.reason | startswith("inactive"))' |
        jq -e 'length >= 1' >/dev/null
}

# --- a. after A idles B, B's burst arrives whole within 1 s ------------------------------
start_agent --inactivity-threshold 20s
start_agent_b
nb_start_trace "$TRACE"
ping_check "$REMOTE_V4"
wait_for 10 "B Connected on A" nb_state_is_on a "$B_PUBKEY" Connected
wait_for 10 "A Connected on B" nb_state_is_on b "$A_PUBKEY" Connected
wait_for 60 "A to idle B by inactivity" idled_by_inactivity
nb_state_is_on b "$A_PUBKEY" Connected || fail "B's agent idled A too (threshold 15m)"
pass "A idled B after 20 s; B's agent still has A Connected"

nb_next_port
out="$LAB_DIR/udp.$NB_PORT.out"
# The window opens when the listener is ready, before the sender is even spawned (that
# alone takes most of a second under emulation; the host measures ~110 ms from ready to
# the last datagram). Without kept sessions nothing arrives for ~15 s.
nb_start_listener "$out" in_a "$NBTRAFFIC" udp-recv --bind "$A_V4" --port "$NB_PORT" \
    --count 30 --timeout-ms 3000
in_b "$NBTRAFFIC" udp-burst --dst "$A_V4" --port "$NB_PORT" --count 30 --within-ms 10 ||
    fail "udp burst sender on B failed"
nb_finish_listener "$out" || fail "B's burst to A after A idled B did not arrive whole"
pass "B's 30 datagrams after A idled it arrived whole: $(grep -m1 '^received' "$out")"
wait_for 5 "B Connected on A again" nb_state_is_on a "$B_PUBKEY" Connected
last=$(nb_trace_events "$TRACE" "$B_PUBKEY" '.event == "transition" and .to == "Connected"' | jq -r '.[-1].reason')
[[ $last == remote ]] || fail "B Connected again on A with reason '$last', expected remote"
pass "A shows B Connected again (reason remote)"
stop_agent_b
stop_agent

# --- b. a steady stream from B through restarts of A's agent ------------------------------
start_agent
ping_check "$REMOTE_V4"
wait_for 10 "B Connected on A" nb_state_is_on a "$B_PUBKEY" Connected
nb_next_port
out="$LAB_DIR/udp.$NB_PORT.out"
# 20 datagrams a second for 16 s.
nb_start_listener "$out" in_a "$NBTRAFFIC" udp-recv --bind "$A_V4" --port "$NB_PORT" \
    --count 320 --timeout-ms 30000 --max-gap-ms 1000
in_b "$NBTRAFFIC" udp-burst --dst "$A_V4" --port "$NB_PORT" --count 320 --within-ms 16000 \
    >"$LAB_DIR/stream-sender.out" 2>&1 &
sender=$!
NB_BG_PIDS+=("$sender")
sleep 2
stop_agent
sleep 1
start_agent --adopt
nb_state_is_on a "$B_PUBKEY" Connected || fail "adopting: B is $(nb_peer_field_on a "$B_PUBKEY" state), expected Connected (live session)"
pass "adopted with a live session: B Connected at once"
sleep 2
stop_agent
sleep 1
start_agent
nb_state_is_on a "$B_PUBKEY" Connected || fail "starting with -c: B is $(nb_peer_field_on a "$B_PUBKEY" state), expected Connected (live session)"
pass "started with -c and a live session: B Connected at once"
wait "$sender" || fail "stream sender on B failed: $(cat "$LAB_DIR/stream-sender.out")"
nb_finish_listener "$out" || fail "the stream from B lost datagrams or stalled over 1 s across the restarts"
pass "320 datagrams at 20/s through two stops and two starts: all arrived, in order, no gap over 1 s"
stop_agent
echo "stale_sessions: $NB_CHECKS_PASSED checks passed"
