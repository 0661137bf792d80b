#!/usr/bin/env bash
# The run directory full or read-only, so the state file (the idle peers' endpoints) cannot
# be written. No peer may then lose its endpoint in WireGuard unless a restart could bring
# it back: an apply, `set lazy on` and a start are refused with an error naming the state
# file and the reason, and nothing changes. What needs no new endpoint stored (status, a
# wake, an idle) goes on. Once there is room again, the same apply works.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 5

# A small tmpfs as the run directory (root-only, as the agent requires).
mkdir -p "$AGENT_RUN_DIR"
mount -t tmpfs -o size=256k,mode=0700 nbrun "$AGENT_RUN_DIR" || skip "cannot mount a tmpfs"
NB_CLEANUP_CMDS+=("umount -l '$AGENT_RUN_DIR' 2>/dev/null")
wg_peers() { in_a wg show "$WG_A" peers | wc -l; }
conf="$LAB_DIR/more.conf"
{
    cat "$A_CONF"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.240.1.1/32\nEndpoint = 192.0.2.77:51820\n' "$(wg genkey | wg pubkey)"
} >"$conf"

start_agent
[[ -s $AGENT_RUN_DIR/$WG_A.peers.json ]] || fail "no state file in the run directory"
before=$(wg_peers)

# Full: fill the tmpfs (the agent's state file is already there; its rewrite cannot fit).
dd if=/dev/zero of="$AGENT_RUN_DIR/filler" bs=4k 2>/dev/null || true
rc=0
err=$(nb_cli apply -c "$conf" 2>&1) || rc=$?
((rc == 1)) || fail "apply into a full run directory: exit $rc: $err"
grep -q "cannot store the peers' endpoints (.*No space left on device); the map was not applied" <<<"$err" ||
    fail "apply into a full run directory: '$err'"
[[ $(wg_peers) == "$before" ]] || fail "a refused apply changed WireGuard: $(wg_peers) peers, was $before"
pass "full run directory: apply refused, nothing changed: '$err'"

# SIGHUP re-reads the file given with -c: refused the same way, and said in the log.
cp "$A_CONF" "$LAB_DIR/a.orig"
cp "$conf" "$A_CONF"
kill -HUP "$AGENT_PID"
wait_for 5 "the refused SIGHUP in the log" grep -q "SIGHUP: .*cannot store the peers' endpoints" "$AGENT_LOG"
[[ $(wg_peers) == "$before" ]] || fail "a refused SIGHUP changed WireGuard"
cp "$LAB_DIR/a.orig" "$A_CONF"
pass "full run directory: SIGHUP refused and logged"

# A wake and an idle need nothing stored: B still works.
ping_check "$REMOTE_V4"
check "peer idle B" nb_cli peer idle "$B_PUBKEY"
wait_for 10 "B Idle" eval '[[ $(nb_cli status -d --json | jq -r --arg k "$B_PUBKEY" ".peers[] | select(.public_key == \$k) | .state") == Idle ]]'
# A responder drops an initiation too close to the previous one (see cycles.sh): the
# first ping just made one.
sleep 1
ping_check "$REMOTE_V4"
pass "full run directory: wakes and idles go on"

# Lazy mode off and on again: on would take endpoints away, so it is refused.
nb_cli set lazy off >/dev/null
rc=0
err=$(nb_cli set lazy on 2>&1) || rc=$?
((rc == 1)) || fail "set lazy on into a full run directory: exit $rc: $err"
grep -q "cannot store the peers' endpoints.*lazy mode stays off" <<<"$err" || fail "set lazy on: '$err'"
[[ $(nb_cli status --json | jq .lazy) == false ]] || fail "lazy mode changed although refused"
pass "full run directory: set lazy on refused, lazy stays off: '$err'"

# Read-only: the same.
rm -f "$AGENT_RUN_DIR/filler"
mount -o remount,ro "$AGENT_RUN_DIR"
rc=0
err=$(nb_cli set lazy on 2>&1) || rc=$?
((rc == 1)) && grep -q "Read-only file system" <<<"$err" || fail "set lazy on into a read-only run directory: exit $rc: $err"
pass "read-only run directory: set lazy on refused: '$err'"
mount -o remount,rw "$AGENT_RUN_DIR"

# Room again: the same requests work.
check "set lazy on" nb_cli set lazy on
nb_cli apply -c "$conf" | grep -q "1 added" || fail "apply with room again"
[[ $(wg_peers) == $((before + 1)) ]] || fail "WireGuard has $(wg_peers) peers after the apply, expected $((before + 1))"
pass "room again: set lazy on and the apply work"
stop_agent

# A start that cannot store the endpoints it is about to take away does not start.
dd if=/dev/zero of="$AGENT_RUN_DIR/filler" bs=4k 2>/dev/null || true
rm -f "$AGENT_RUN_DIR/$WG_A.peers.json"
rc=0
in_a "$NBAGENT" run -i "$WG_A" -c "$A_CONF" --run-dir "$AGENT_RUN_DIR" >"$LAB_DIR/start-full.out" 2>&1 </dev/null || rc=$?
((rc != 0)) || fail "the agent started with a full run directory"
grep -q "cannot store the peers' endpoints.*not starting" "$LAB_DIR/start-full.out" || fail "start: $(cat "$LAB_DIR/start-full.out")"
eps=$(in_a wg show "$WG_A" endpoints | awk '$2 != "(none)"' | wc -l)
[[ $eps == "$(wg_peers)" ]] || fail "a refused start left $eps of $(wg_peers) endpoints"
pass "full run directory at start: refused, every endpoint still in WireGuard: '$(grep -m1 "cannot store" "$LAB_DIR/start-full.out" | sed 's/^.*\] //')'"
