#!/usr/bin/env bash
# `peer wake` and live settings on a lab with real wireguard-go:
#  - `peer wake B` connects B with no traffic at all (a keepalive starts the handshake, and
#    goes once B is Connected); `--all-in-group` starts every member; unknown and bad keys
#    are refused by name;
#  - `set log-level debug` takes effect at once (debug lines follow);
#  - `set inactivity-threshold 1m` sends B, quiet since its wake, back to Idle within the
#    new minute, without a restart;
#  - meanwhile status shows B's last handshake and rx/tx as `wg show` has them.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 4

# The lab's dummies 2 and 3 in a group (their wakes fail later: nobody answers).
conf="$LAB_DIR/peer_wake.conf"
awk '/^\[Peer\]/ {n++} {print} /^PublicKey/ && (n == 2 || n == 3) {print "Group = pair"}' "$A_CONF" >"$conf"
A_CONF=$conf
start_agent --connect-timeout 3s

nb_state_is "$B_PUBKEY" Idle || fail "B is not Idle at start"
tx_before=$(in_a cat "/sys/class/net/$WG_A/statistics/tx_packets")
out=$(nb_cli peer wake "$B_PUBKEY") || fail "peer wake B failed: $out"
grep -q "waking 1 peer" <<<"$out" || fail "peer wake says: $out"
t0=$SECONDS
wait_for 10 "B Connected after peer wake" nb_state_is "$B_PUBKEY" Connected
tx_after=$(in_a cat "/sys/class/net/$WG_A/statistics/tx_packets")
((tx_after == tx_before)) || fail "packets went out through $WG_A ($tx_before -> $tx_after): the wake was not traffic-free"
pass "peer wake connected B in $((SECONDS - t0)) s with no packet sent through $WG_A"
wait_for 5 "the wake's keepalive off" eval "[[ \$(in_a wg show $WG_A persistent-keepalive | awk -v k='$B_PUBKEY' '\$1 == k {print \$2}') == off ]]"
pass "the keepalive that started the handshake is off again"
out=$(nb_cli peer wake "$B_PUBKEY") || fail "a second peer wake of B failed: $out"
grep -q "waking 0 peers (1 already connecting or connected)" <<<"$out" || fail "second peer wake says: $out"

out=$(nb_cli peer wake --all-in-group pair) || fail "peer wake --all-in-group failed: $out"
grep -q "waking 2 peers of group pair" <<<"$out" || fail "peer wake --all-in-group says: $out"
out=$(nb_cli peer wake --all-in-group nope 2>&1) && fail "an unknown group was accepted"
grep -q "unknown group nope" <<<"$out" || fail "an unknown group is refused without naming it: $out"
unknown=$(wg genkey | wg pubkey)
out=$(nb_cli peer wake "$B_PUBKEY" "$unknown" 2>&1) && fail "an unknown key was accepted"
grep -qF "unknown peer $unknown" <<<"$out" || fail "an unknown key is refused without naming it: $out"
rc=0
out=$(nb_cli peer wake not-a-key 2>&1) || rc=$?
((rc == 2)) && grep -q "not a WireGuard public key" <<<"$out" || fail "a bad key: exit $rc, $out"
pass "groups wake together; unknown and bad keys are refused by name"

out=$(nb_cli set log-level debug) || fail "set log-level failed: $out"
grep -q "log level is now debug" <<<"$out" || fail "set log-level says: $out"
lines=$(wc -l <"$AGENT_LOG")
nb_cli status >/dev/null
wait_for 5 "a debug line" eval "tail -n +$((lines + 1)) '$AGENT_LOG' | grep -q '\[debug\] control: status request'"
nb_cli set log-level info >/dev/null
lines=$(wc -l <"$AGENT_LOG")
nb_cli status >/dev/null
sleep 0.5
! tail -n +$((lines + 1)) "$AGENT_LOG" | grep -q '\[debug\]' || fail "debug lines go on after set log-level info"
pass "set log-level debug, then info: debug lines start and stop at once"

# B quiet since its wake: the new threshold sends it back to Idle within the minute.
nb_cli peer wake "$B_PUBKEY" >/dev/null
wait_for 10 "B Connected again" nb_state_is "$B_PUBKEY" Connected
out=$(nb_cli set inactivity-threshold 1m) || fail "set inactivity-threshold failed: $out"
grep -q "inactivity threshold is now 1m" <<<"$out" || fail "set inactivity-threshold says: $out"
t0=$SECONDS
[[ $(nb_cli status --json | jq .inactivity_threshold_ms) == 60000 ]] || fail "status does not show the new threshold"
# Meanwhile, status shows WireGuard's own figures of B (`wg show`), read by the agent at
# most 10 s ago: B is quiet, so they come to agree exactly.
figures_agree() {
    local st hs rx tx
    st=$(nb_cli status --json --peer "$B_PUBKEY") || return 1
    hs=$(in_a wg show "$WG_A" latest-handshakes | awk -v k="$B_PUBKEY" '$1 == k {print $2}')
    read -r rx tx < <(in_a wg show "$WG_A" transfer | awk -v k="$B_PUBKEY" '$1 == k {print $2, $3}')
    jq -e --argjson hs "$hs" --argjson rx "$rx" --argjson tx "$tx" \
        '.peers[0] | .wg_read_ms > 0 and .last_handshake_ms == $hs * 1000 and $hs > 0
         and .rx_bytes == $rx and .tx_bytes == $tx and $rx > 0' <<<"$st" >/dev/null
}
wait_for 25 "status's handshake and rx/tx of B as wg show has them" figures_agree
table=$(nb_cli status --peer "$B_PUBKEY")
grep -q "HANDSHAKE *RX / TX" <<<"$table" && grep -q "as WireGuard counted them" <<<"$table" ||
    fail "the status table does not show WireGuard's figures: $table"
pass "status shows B's handshake and rx/tx as wg show has them"
wait_for 75 "B Idle by inactivity" nb_state_is "$B_PUBKEY" Idle
took=$((SECONDS - t0))
((took <= 70)) || fail "B went Idle $took s after the 1m threshold was set"
nb_cli status --json --peer "$B_PUBKEY" | jq -e '.peers[0].state == "Idle"' >/dev/null || fail "B is not Idle"
grep -q "inactive for 1m" "$AGENT_LOG" || fail "the log does not say B went idle for the 1m threshold"
pass "set inactivity-threshold 1m: B Idle after $took s, no restart"
out=$(nb_cli set inactivity-threshold 5s 2>&1) && fail "a 5s threshold was accepted"
grep -q "below the minimum of 10s" <<<"$out" || fail "a 5s threshold is refused without saying why: $out"

stop_agent
