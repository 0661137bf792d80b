#!/usr/bin/env bash
# /metrics on a lab with real wireguard-go: scraped before and after one wake and one
# operator idle, each counter moves by exactly what happened; promtool (from Debian's
# prometheus package) accepts the output; no peer's key or address is in it; a port in
# use refuses the start with a message naming it.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
PROMTOOL=$(nb_promtool) || skip "promtool is not there: scripts/setup.sh unpacks it from Debian's prometheus package"
lab_up --peers 3

PORT=$((20000 + $$ % 20000))
start_agent --metrics-listen "127.0.0.1:$PORT"

scrape() { in_a curl -fsS --max-time 5 "http://127.0.0.1:$PORT/metrics"; }
# value FILE SERIES: the sample's value ("" when absent); SERIES as it stands before the
# value, labels included.
value() { awk -v s="$2" '$1 == s {print $2}' "$1"; }
IF="interface=\"$WG_A\""

nb_state_is "$B_PUBKEY" Idle || fail "B is not Idle at start"
scrape >"$LAB_DIR/before.prom" || fail "the first scrape failed"
ping_check "$REMOTE_V4"
wait_for 10 "B Connected" nb_state_is "$B_PUBKEY" Connected
scrape >"$LAB_DIR/woken.prom" || fail "the scrape after the wake failed"
nb_cli peer idle "$B_PUBKEY" >/dev/null || fail "peer idle B failed"
scrape >"$LAB_DIR/after.prom" || fail "the scrape after the idle failed"

# moved SERIES DELTA FROM TO: the series went up by exactly DELTA between two scrapes.
moved() {
    local a b
    a=$(value "$LAB_DIR/$3.prom" "$1")
    b=$(value "$LAB_DIR/$4.prom" "$1")
    [[ -n $a && -n $b ]] || fail "$1 is missing from a scrape ($3: '$a', $4: '$b')"
    # Compared as numbers: a float series prints as 1 or 1.5.
    awk -v a="$a" -v b="$b" -v d="$2" 'BEGIN {exit !(b - a == d)}' ||
        fail "$1 went from $a to $b between $3 and $4, not by $2"
}
moved "nbagent_wakes_total{$IF,reason=\"packet\"}" 1 before woken
moved "nbagent_wakes_total{$IF,reason=\"remote\"}" 0 before woken
moved "nbagent_time_to_connected_seconds_count{$IF}" 1 before woken
moved "nbagent_time_to_connected_seconds_bucket{$IF,le=\"+Inf\"}" 1 before woken
moved "nbagent_peers{$IF,state=\"idle\"}" -1 before woken
moved "nbagent_peers{$IF,state=\"connected\"}" 1 before woken
moved "nbagent_packets_held_total{$IF}" 1 before woken
moved "nbagent_packets_replayed_total{$IF}" 1 before woken
moved "nbagent_packets_dropped_total{$IF}" 0 before woken
for cause in connector connector_timeout handshake_timeout wireguard; do
    moved "nbagent_wake_failures_total{$IF,cause=\"$cause\"}" 0 before after
done
moved "nbagent_idles_total{$IF,reason=\"operator\"}" 1 woken after
moved "nbagent_peers{$IF,state=\"idle\"}" 1 woken after
moved "nbagent_peers{$IF,state=\"connected\"}" -1 woken after
pass "counters moved by exactly one wake, one replayed packet and one operator idle"

[[ $(value "$LAB_DIR/after.prom" "nbagent_peers{$IF,state=\"idle\"}") == "$LAB_PEERS" ]] ||
    fail "nbagent_peers{state=idle} is not the lab's $LAB_PEERS peers"
grep -q "^nbagent_info{$IF,version=\"[^\"]*\",wg_backend=\"userspace\",trigger=\"bpf\",attach_mode=\"[a-z]*\"} 1$" \
    "$LAB_DIR/after.prom" || fail "nbagent_info is missing or wrong: $(grep nbagent_info "$LAB_DIR/after.prom")"
for s in process_resident_memory_bytes process_open_fds process_cpu_seconds_total; do
    [[ $(awk -v s="$s" '$1 == s && $2 > 0' "$LAB_DIR/after.prom") ]] || fail "$s is missing or 0"
done
pass "info, peer counts and process series are there"

out=$("$PROMTOOL" check metrics <"$LAB_DIR/after.prom" 2>&1) || fail "promtool check metrics: $out"
pass "promtool check metrics accepts the output${out:+ ($out)}"

for secret in "$B_PUBKEY" "$REMOTE_V4" "$UNDERLAY_B"; do
    ! grep -qF -- "$secret" "$LAB_DIR/after.prom" || fail "the metrics show a peer's key or address ($secret)"
done
pass "no peer's key or address in the metrics"

# A second agent cannot take the port: it names it and starts nothing.
out=$(in_a "$NBAGENT" run -i nbm$$ -c "$A_CONF" --run-dir "$LAB_DIR/run-m" \
    --metrics-listen "127.0.0.1:$PORT" 2>&1) && fail "a second agent started on a port in use"
grep -qF "127.0.0.1:$PORT" <<<"$out" || fail "the refusal does not name the address: $out"
in_a ip link show "nbm$$" >/dev/null 2>&1 && fail "the refused agent left interface nbm$$ behind"
pass "a port in use is refused by name: $(grep -F "127.0.0.1:$PORT" <<<"$out" | head -1)"

stop_agent
