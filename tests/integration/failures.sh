#!/usr/bin/env bash
# Wakes that fail, with --connect-timeout 2s:
#  a. a dummy peer (its endpoint in the underlay answers nobody) never completes a
#     handshake: back to Idle after the timeout with the error, the held ping dropped and
#     counted, a 10 s backoff (--connect-backoff; long enough for slow VMs) during which packets are dropped without a new attempt, then
#     a second attempt with a longer backoff. The real remote B wakes normally meanwhile.
#  b. a connector that hangs (exec:sleep 600) and an endpoint that does not resolve:
#     each fails on its own; B, pinged at the same time, answers on the first try.
#  c. `status -d` lists the wake errors of those peers.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 10

TRACE="$LAB_DIR/trace.json"
HUNG_V4=10.240.0.1
DNS_V4=10.240.0.2
# The lab's 2nd peer: a dummy with host route 10.101.0.1.
DUMMY_KEY=$(nb_dummy_key)
DUMMY_V4=10.101.0.1
grep -q "^AllowedIPs = $DUMMY_V4/32," <(awk '/^\[Peer\]/ {n++} n == 2' "$A_CONF") ||
    fail "the lab's 2nd peer does not own $DUMMY_V4"
HUNG_KEY=$(wg genkey | wg pubkey)
DNS_KEY=$(wg genkey | wg pubkey)
conf="$LAB_DIR/failures.conf"
{
    cat "$A_CONF"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nConnector = exec:sleep 600\n' "$HUNG_KEY" "$HUNG_V4"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\nEndpoint = does-not-exist.invalid:51820\n' \
        "$DNS_KEY" "$DNS_V4"
} >"$conf"
A_CONF=$conf # start_agent runs with it

count_events() { nb_trace_events "$TRACE" "$1" "$2" | jq length; }
has_events() { (($(count_events "$1" "$2") >= ${3:-1})); }
to_connecting='.event == "transition" and .from == "Idle" and .to == "Connecting"'
to_idle='.event == "transition" and .from == "Connecting" and .to == "Idle"'
to_connected='.event == "transition" and .from == "Connecting" and .to == "Connected"'

# Waits until KEY shows FAILURES failures, keeping the first status that does in $snap:
# its retry_in_ms is the backoff as seen right after the failure.
snap=""
failed_n_times() {
    snap=$(nb_peer_json "$1") || return 1
    [[ $(jq .failures <<<"$snap") == "$2" && $(jq -r .state <<<"$snap") == Idle ]]
}

# --exec-timeout above --connect-timeout: the manager's deadline must be what ends a hung
# connector's wake, not the connector's own limit.
start_agent --connect-timeout 2s --connect-backoff 10s --exec-timeout 30s
nb_start_trace "$TRACE"
nb_state_is "$DUMMY_KEY" Idle || fail "dummy peer is $(nb_peer_field "$DUMMY_KEY" state) at start"

# --- a. handshake timeout -------------------------------------------------------------
echo "--- ping $DUMMY_V4 (dummy peer: nobody answers its handshake)"
in_a ping -c 1 -W 5 "$DUMMY_V4" >"$LAB_DIR/ping-dummy.out" 2>&1 &
ping_pid=$!
NB_BG_PIDS+=("$ping_pid")
wait_for 15 "the dummy's first wake to fail" failed_n_times "$DUMMY_KEY" 1
snap1=$snap
# At once, while the 2 s backoff runs: a packet is dropped, no new attempt.
backoff_ping_ok=0
in_a ping -c 1 -W 1 "$DUMMY_V4" >/dev/null 2>&1 && backoff_ping_ok=1
rc=0
wait "$ping_pid" || rc=$?
((rc != 0)) || fail "a ping to the dummy peer was answered"
pass "ping to the dummy peer got no answer"
((!backoff_ping_ok)) || fail "a ping to the dummy peer during its backoff was answered"
echo "status right after the failure: $snap1"

[[ $(count_events "$DUMMY_KEY" "$to_connecting") == 1 ]] || fail "not exactly one Idle->Connecting for the dummy"
idle_ev=$(nb_trace_events "$TRACE" "$DUMMY_KEY" "$to_idle" | jq -c '.[0]')
echo "trace: $idle_ev"
jq -e '.reason | contains("no handshake within 2s")' <<<"$idle_ev" >/dev/null ||
    fail "Connecting->Idle reason lacks 'no handshake within 2s'"
jq -e '.reason | contains("retry after 10s")' <<<"$idle_ev" >/dev/null || fail "first backoff is not 10s"
pass "trace: Idle->Connecting->Idle, reason '$(jq -r .reason <<<"$idle_ev")'"
took=$(nb_trace_events "$TRACE" "$DUMMY_KEY" '.event == "transition"' | jq "$NB_JQ_TS_MS (.[1] | ts_ms) - (.[0] | ts_ms)")
((took >= 1900 && took <= 4000)) || fail "Connecting lasted $took ms, expected 2-4 s"
pass "the dummy was Connecting for $took ms"

jq -e '.failures == 1 and .retry_in_ms > 0 and .retry_in_ms <= 10000 and (.last_error | length > 0)
    and .dropped >= 1' <<<"$snap1" >/dev/null ||
    fail "status after the failure: want failures 1, 0 < retry_in_ms <= 10000, last_error, dropped >= 1"
retry1=$(jq .retry_in_ms <<<"$snap1")
dropped1=$(jq .dropped <<<"$snap1")
pass "status: failures 1, retry in $retry1 ms, dropped $dropped1, error '$(jq -r .last_error <<<"$snap1")'"

snap=$(nb_peer_json "$DUMMY_KEY")
[[ $(jq -r .state <<<"$snap") == Idle ]] || fail "dummy is not Idle during its backoff"
(($(jq .dropped <<<"$snap") > dropped1)) || fail "the ping during the backoff was not counted as dropped"
[[ $(count_events "$DUMMY_KEY" "$to_connecting") == 1 ]] || fail "a ping during the backoff started a new attempt"
drop_ev=$(nb_trace_events "$TRACE" "$DUMMY_KEY" '.event == "drop"' | jq -c '.[0] // empty')
[[ -n $drop_ev ]] || fail "no drop event in the trace for the ping during the backoff"
jq -e '.reason == "backoff" and .retry_in_ms > 0' <<<"$drop_ev" >/dev/null || fail "drop event: $drop_ev"
pass "during the backoff: no new attempt, dropped $dropped1 -> $(jq .dropped <<<"$snap"), trace $drop_ev"

# The backoff over, a packet starts a second attempt; B wakes normally while it runs.
backoff_over() { [[ $(nb_peer_field "$DUMMY_KEY" retry_in_ms) == "" || $(nb_peer_field "$DUMMY_KEY" retry_in_ms) == 0 ]]; }
wait_for 25 "the dummy's backoff to end" backoff_over
in_a ping -c 1 -W 5 "$DUMMY_V4" >/dev/null 2>&1 &
ping_pid=$!
NB_BG_PIDS+=("$ping_pid")
wait_for 5 "a second Idle->Connecting for the dummy" has_events "$DUMMY_KEY" "$to_connecting" 2
pass "after the backoff a ping starts a second attempt"
nb_state_is "$B_PUBKEY" Idle || fail "B is $(nb_peer_field "$B_PUBKEY" state) before its ping"
ping_check "$REMOTE_V4"
wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
pass "B woke normally while the dummy was failing"
wait_for 15 "the dummy's second wake to fail" failed_n_times "$DUMMY_KEY" 2
snap2=$snap
echo "status right after the second failure: $snap2"
retry2=$(jq .retry_in_ms <<<"$snap2")
((retry2 > retry1 && retry2 > 10000)) ||
    fail "second backoff ($retry2 ms left) is not longer than the first ($retry1 ms left, at most 10 s)"
nb_trace_events "$TRACE" "$DUMMY_KEY" "$to_idle" | jq -e '.[1].reason | contains("retry after 20s")' >/dev/null ||
    fail "second Connecting->Idle does not say 'retry after 20s'"
pass "second failure: failures 2, backoff 20s ($retry2 ms left vs $retry1 after the first)"
wait "$ping_pid" && fail "the dummy answered its second ping"

# --- b. a hung connector and a name that does not resolve block nobody ----------------
check "peer idle B" nb_cli peer idle "$B_PUBKEY"
wait_for 10 "B Idle" nb_state_is "$B_PUBKEY" Idle
echo "--- ping $HUNG_V4 (exec:sleep 600) and $DNS_V4 (does-not-exist.invalid) in the background"
in_a ping -c 1 -W 5 "$HUNG_V4" >/dev/null 2>&1 &
NB_BG_PIDS+=($!)
in_a ping -c 1 -W 5 "$DNS_V4" >/dev/null 2>&1 &
NB_BG_PIDS+=($!)
wait_for 5 "the hung connector's wake to start" has_events "$HUNG_KEY" "$to_connecting"
wait_for 5 "the unresolvable peer's wake to start" has_events "$DNS_KEY" "$to_connecting"
echo "--- ping -c 1 -W 2 $REMOTE_V4 while they are stuck"
t0=$(date +%s%N)
in_a ping -c 1 -W 2 "$REMOTE_V4" || fail "B did not answer its first ping within 2 s while the others hung"
ms=$((($(date +%s%N) - t0) / 1000000))
((ms < 2000)) || fail "B's first ping took $ms ms"
pass "B answered its first ping in $ms ms"
wait_for 5 "B Connected" nb_state_is "$B_PUBKEY" Connected
# B got there before the hung wake gave up: it did not wait for it.
wait_for 10 "the hung connector's wake to fail" has_events "$HUNG_KEY" "$to_idle"
b_at=$(nb_trace_events "$TRACE" "$B_PUBKEY" "$to_connected" | jq "$NB_JQ_TS_MS .[-1] | ts_ms")
hung_ev=$(nb_trace_events "$TRACE" "$HUNG_KEY" "$to_idle" | jq -c '.[0]')
echo "trace: $hung_ev"
((b_at < $(jq "$NB_JQ_TS_MS ts_ms" <<<"$hung_ev"))) || fail "B was Connected only after the hung wake gave up"
jq -e '.reason | contains("connector gave no answer within 2s")' <<<"$hung_ev" >/dev/null ||
    fail "hung connector: reason lacks 'connector gave no answer within 2s'"
pass "B Connected while the hung connector ran; that one failed: $(jq -r .reason <<<"$hung_ev")"
wait_for 10 "the unresolvable peer's wake to fail" has_events "$DNS_KEY" "$to_idle"
dns_ev=$(nb_trace_events "$TRACE" "$DNS_KEY" "$to_idle" | jq -c '.[0]')
echo "trace: $dns_ev"
jq -e '.reason | contains("cannot resolve '"'"'does-not-exist.invalid'"'"'")' <<<"$dns_ev" >/dev/null ||
    fail "unresolvable endpoint: reason is not a resolution error"
pass "unresolvable endpoint failed: $(jq -r .reason <<<"$dns_ev")"
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
nb_state_is "$B_PUBKEY" Connected || fail "B is $(nb_peer_field "$B_PUBKEY" state) after the failures"
pass "agent still running, B still Connected"

# --- c. status -d shows the wake errors ---------------------------------------------
out=$(nb_cli status -d) || fail "status -d failed"
echo "$out" | sed -n '/^wake errors:/,$p'
errors=$(sed -n '/^wake errors:/,$p' <<<"$out")
[[ -n $errors ]] || fail "status -d has no 'wake errors:' section"
grep -q "^$DUMMY_KEY: no handshake within 2s (.*2 failures)" <<<"$errors" || fail "status -d: no wake error for the dummy"
grep -q "^$HUNG_KEY: connector gave no answer within 2s (.*1 failure)" <<<"$errors" ||
    fail "status -d: no wake error for the hung connector"
grep -q "^$DNS_KEY: cannot resolve 'does-not-exist.invalid'" <<<"$errors" ||
    fail "status -d: no wake error for the unresolvable endpoint"
! grep -q "^$B_PUBKEY" <<<"$errors" || fail "status -d lists a wake error for B"
pass "status -d lists the wake errors of the three failing peers, none for B"

stop_agent
# The hung connector's command went with the agent.
left=$(for pid in $(ip netns pids "$NS_A"); do tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null && echo; done)
! grep -q "^sleep 600" <<<"$left" || fail "the hung connector's 'sleep 600' outlived the agent"
pass "no connector command left behind"
