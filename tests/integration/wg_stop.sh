#!/usr/bin/env bash
# wireguard-go stopped (SIGSTOP) under the agent, in a 50-peer lab with --connect-timeout
# 3s; B has PersistentKeepalive = 25 (so an endpoint WireGuard takes late brings a handshake):
#  a. one wake in flight (a dummy, its endpoint set) and a new one (B) while wireguard-go is
#     stopped: `status` answers within 1 s every time and a new `trace` subscribes within
#     1 s; B's wake fails with "WireGuard not answering"; status says "wireguard: not
#     answering since ..."; no peer stays Connecting past the 3 s timeout.
#  b. SIGCONT: the agent reads WireGuard back and makes it agree: B's endpoint request that
#     timed out was applied late, and is undone (every Idle peer has no endpoint and no
#     handshake); B wakes on the first ping.
#  c. SIGTERM while it is stopped: exit 0 with a warning, the state file kept; after
#     SIGCONT an agent that adopts the interface (no -c) gets B's endpoint from that file.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
require_wireguard_go stop
lab_up --peers 50

TRACE="$LAB_DIR/trace.json"
DUMMY_KEY=$(nb_dummy_key)
DUMMY_V4=10.101.0.1
conf="$LAB_DIR/keepalive.conf"
awk -v k="$B_PUBKEY" '{print} $0 == "PublicKey = " k {print "PersistentKeepalive = 25"}' "$A_CONF" >"$conf"
grep -q "^PersistentKeepalive = 25" "$conf" || fail "could not give B a keepalive in $conf"
A_CONF=$conf

error_has() { [[ $(nb_peer_field "$1" last_error) == *"$2"* ]]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
WGPID=""
cont_wg() { [[ -z $WGPID ]] || kill -CONT "$WGPID" 2>/dev/null || true; }
NB_CLEANUP_HOOKS+=(cont_wg)

start_agent --connect-timeout 3s --connect-backoff 1s
nb_start_trace "$TRACE"
WGPID=$(wg_go_pid_a) || fail "no wireguard-go for $WG_A in $NS_A"
pass "wireguard-go of $WG_A is pid $WGPID"
ping_check "$REMOTE_V4"
wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
check "peer idle B" nb_cli peer idle "$B_PUBKEY"
wait_for 5 "B Idle" nb_state_is "$B_PUBKEY" Idle

# --- a. stopped during a wake -----------------------------------------------------------
in_a ping -c 1 -W 1 "$DUMMY_V4" >/dev/null 2>&1 &
NB_BG_PIDS+=($!)
wait_for 5 "the dummy Connecting" nb_state_is "$DUMMY_KEY" Connecting
dummy_from=$(now_ms)
sleep 0.3 # its endpoint is set by now: it waits for a handshake nobody answers
kill -STOP "$WGPID"
pass "wireguard-go stopped (SIGSTOP) while the dummy was Connecting"
# The agent finds out at its next request to WireGuard: B's wake sets B's endpoint.
in_a ping -c 1 -W 1 "$REMOTE_V4" >/dev/null 2>&1 &
NB_BG_PIDS+=($!)
slowest=0
for ((i = 0; i < 25; i++)); do
    ms=$(nb_ms nb_cli status) || fail "status failed while wireguard-go is stopped"
    ((ms > slowest)) && slowest=$ms
    ((ms < 1000)) || fail "status took $ms ms while wireguard-go is stopped"
    sleep 0.1
done
pass "status answered 25 times in the 4 s after SIGSTOP, the slowest in $slowest ms"
t0=$(now_ms)
nb_start_trace "$LAB_DIR/trace2.json"
ms=$(($(now_ms) - t0))
((ms < 1000)) || fail "a new trace took $ms ms to subscribe"
pass "a new trace subscribed in $ms ms"
if [[ $(nb_cli status --json | jq -r .trigger) == udp ]]; then
    # The UDP engine's trigger is WireGuard's own handshake initiation: a stopped
    # wireguard-go sends none, so B's ping waits in its tun queue and wakes nothing.
    echo "UDP engine: no wake of B to fail while wireguard-go is stopped"
else
    wait_for 5 "B's wake to fail naming WireGuard" error_has "$B_PUBKEY" "WireGuard not answering"
    pass "B's wake failed: $(nb_peer_field "$B_PUBKEY" last_error)"
    nb_state_is "$B_PUBKEY" Idle || fail "B is $(nb_peer_field "$B_PUBKEY" state), not Idle, after its wake failed"
fi
wait_for 2 "status to say WireGuard is not answering" nb_wg_state_is "not answering"
text=$(nb_cli status) || fail "status failed"
grep -q "^wireguard: *not answering since " <<<"$text" || fail "status text lacks 'wireguard: not answering since': $text"
pass "status: $(grep '^wireguard:' <<<"$text")"
nb_cli status --json | jq -e '.wireguard.since != "" and (.wireguard.error | length > 0)' >/dev/null ||
    fail "status --json: .wireguard has no since or error: $(nb_cli status --json | jq -c .wireguard)"
# The dummy's 3 s ran out while wireguard-go was stopped: Idle by 4.5 s after it started.
left=$((4500 - ($(now_ms) - dummy_from)))
((left <= 0)) || sleep "$(awk -v ms="$left" 'BEGIN {print ms / 1000}')"
counts=$(nb_cli status --json | jq -c .counts)
[[ $(jq .connecting <<<"$counts") == 0 ]] || fail "peers still Connecting 4.5 s after the last wake: $counts"
nb_state_is "$DUMMY_KEY" Idle || fail "the dummy is $(nb_peer_field "$DUMMY_KEY" state) 4.5 s after its wake started"
pass "no peer Connecting past its timeout ($counts); the dummy: $(nb_peer_field "$DUMMY_KEY" last_error)"
jq -s -e '[.[] | select(.event == "transition" and .to == "Connecting")] | length >= 2' "$TRACE" >/dev/null ||
    fail "the trace lacks the two wakes"

# --- b. SIGCONT: WireGuard is read back and made to agree ---------------------------------
kill -CONT "$WGPID"
t0=$(now_ms)
wait_for 5 "status to say WireGuard is ok" nb_wg_state_is ok
pass "WireGuard ok again $(($(now_ms) - t0)) ms after SIGCONT"
grep -q "WireGuard on $WG_A answers again" "$AGENT_LOG" || fail "the log does not say WireGuard answers again"
echo "log: $(grep -m1 -A2 "WireGuard on $WG_A answers again" "$AGENT_LOG")"
wg_agrees || fail "agent and WireGuard disagree right after WireGuard answered again"
pass "agent and WireGuard agree: every Idle peer without endpoint or handshake"
sleep 2 # nothing applied later (a request that timed out finished before the read-back)
wg_agrees || fail "agent and WireGuard disagree 2 s after WireGuard answered again"
pass "they still agree 2 s later"
ping_check "$REMOTE_V4"
wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
wg_agrees || fail "agent and WireGuard disagree after B woke"
pass "B woke again after WireGuard came back"

# --- c. SIGTERM while wireguard-go is stopped ---------------------------------------------
check "peer idle B" nb_cli peer idle "$B_PUBKEY"
wait_for 5 "B Idle" nb_state_is "$B_PUBKEY" Idle
kill -STOP "$WGPID"
t0=$(now_ms)
stop_agent_unrestored "SIGTERM while wireguard-go is stopped"
echo "the agent exited $(($(now_ms) - t0)) ms after SIGTERM"
state="$AGENT_RUN_DIR/$WG_A.peers.json"
jq -e --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k) | .endpoint' "$state" >/dev/null ||
    fail "the state file $state does not have B's endpoint"
pass "the state file keeps $(jq '.peers | length' "$state") endpoints"
kill -CONT "$WGPID"
start_agent --adopt
ping_check "$REMOTE_V4"
pass "an agent adopting the interface woke B with the endpoint from the state file"
stop_agent
