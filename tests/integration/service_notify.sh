#!/usr/bin/env bash
# What systemd hears from the agent (Type=notify, agent/engine/service_notify.hpp), read
# from a NOTIFY_SOCKET of our own, on real wireguard-go: READY with the counts once the
# peers are in; STATUS as they change; RELOADING then READY around SIGHUP; STOPPING.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 2

sock=$LAB_DIR/notify.sock
heard=$LAB_DIR/notify.txt
socat -u "UNIX-RECV:$sock" - >"$heard" 2>"$LAB_DIR/socat.err" &
NB_BG_PIDS+=($!)
wait_for 5 "the notify socket" test -S "$sock"
heard_has() { tr '\n' ' ' <"$heard" | grep -qF -- "$1"; }

NOTIFY_SOCKET=$sock start_agent
wait_for 5 "READY=1" heard_has "READY=1 STATUS=2 peers: 2 Idle, 0 Connecting, 0 Connected"
pass "READY=1 with the counts once the agent answers"

in_a ping -c 1 -W 5 "$REMOTE_V4" >/dev/null || fail "the first ping to B was lost"
wait_for 5 "STATUS with B Connected" heard_has "STATUS=2 peers: 1 Idle, 0 Connecting, 1 Connected"
pass "STATUS follows the counts: $(tr '\n' ' ' <"$heard" | grep -o 'STATUS=2 peers: 1 Idle, 0 Connecting, 1 Connected' | head -1)"

kill -HUP "$AGENT_PID"
wait_for 5 "RELOADING=1, then READY=1" eval "tr '\n' ' ' <'$heard' | grep -qE 'RELOADING=1 MONOTONIC_USEC=[0-9]+.*READY=1'"
pass "SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1"

stop_agent
wait_for 5 "STOPPING=1" heard_has "STOPPING=1"
pass "STOPPING=1 at the end"
