#!/usr/bin/env bash
# The ring buffer overflows and no peer is left behind: with the smallest ring (4 KiB)
# and the agent stopped (SIGSTOP, as an agent that falls behind), one datagram goes to
# each of the lab's 399 dummy peers. Most reports cannot be written; the programs mark
# those peers. Once the agent runs again:
#  - status counts the lost reports, and as many peers recovered as were marked;
#  - every swept peer woke exactly once (Connecting, its trigger in the trace, some
#    flagged lost_report), none stays Idle; the trace has an "overrun" event;
#  - the real remote B still answers its first ping.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
DUMMIES=399
lab_up --peers $((DUMMIES + 1))

start_agent --ring-buffer-kib 4 --connect-timeout 60s
wait_for 60 "all peers Idle" eval '[[ $(nb_cli status --json | jq .counts.idle) == $((DUMMIES + 1)) ]]'
TRACE="$LAB_DIR/trace.json"
nb_start_trace "$TRACE"

kill -STOP "$AGENT_PID"
in_a "$NBTRAFFIC" udp-sweep --from 10.101.0.1 --hosts "$DUMMIES" --port 9 --within-ms 100 ||
    { kill -CONT "$AGENT_PID"; fail "the sweep could not send to every dummy"; }
kill -CONT "$AGENT_PID"
pass "swept $DUMMIES dummies while the agent was stopped"

triggers() { grep -c '"event":"trigger"' "$TRACE" || true; }
wait_for 30 "a trigger for each of the $DUMMIES dummies" eval '(($(triggers) >= DUMMIES))'
st=$(nb_cli status --json)
lost=$(jq .lost_reports <<<"$st")
recovered=$(jq .lost_recovered <<<"$st")
((lost > 0)) || fail "a 4 KiB ring took $DUMMIES reports without loss: the test proves nothing ($st)"
((recovered > 0)) || fail "$lost reports lost, no peer recovered"
pass "$lost reports lost by the ring buffer, $recovered peers recovered from the marks"

detail=$(nb_cli status -d --json)
once=$(jq --arg b "$B_PUBKEY" '[.peers[] | select(.public_key != $b and .wakes == 1 and .state == "Connecting")] | length' <<<"$detail")
((once == DUMMIES)) ||
    fail "$once of $DUMMIES dummies woke exactly once and are Connecting: $(jq -c --arg b "$B_PUBKEY" \
        '[.peers[] | select(.public_key != $b and (.wakes != 1 or .state != "Connecting")) | {allowed_ips, state, wakes}] | .[:5]' <<<"$detail")"
pass "every swept dummy woke exactly once"
flagged=$(jq -s '[.[] | select(.event == "trigger" and .lost_report == true)] | length' "$TRACE")
((flagged == recovered)) || fail "$flagged triggers flagged lost_report, status says $recovered recovered"
jq -s -e '[.[] | select(.event == "overrun")] | length >= 1' "$TRACE" >/dev/null ||
    fail "no overrun event in the trace"
pass "the trace shows the overrun and the $flagged recovered triggers"

ping_check "$REMOTE_V4"
stop_agent
