#!/usr/bin/env bash
# Groups, never-lazy peers and inactivity, with --inactivity-threshold 20s (the shortest
# a lab can wait out comfortably; the agent takes 10s and up):
#  - B (the real remote) and D (a dummy) are in Group = ha: waking B starts D too
#    (trace reason "group ha"; D, a dummy, then fails its handshake).
#  - N (a dummy, Lazy = off) is Connected from the start, stays Connected without any
#    traffic, and `peer idle` refuses it.
#  - B has PersistentKeepalive = 1: keepalives flow while it is Connected, yet it goes
#    Idle by inactivity.
#  - Idling keeps the routes and WireGuard's allowed IPs: the routed subnet behind B
#    answers the first ping after each idle, twice (NetBird #6250: routed subnets broke
#    after a peer went idle).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 10

TRACE="$LAB_DIR/trace.json"
# Peers 2 and 3 of the lab's config are dummies with host routes 10.101.0.1 and .2.
D_KEY=$(nb_dummy_key)
N_KEY=$(awk '/^PublicKey/ && ++n == 3 {print $3}' "$A_CONF")
conf="$LAB_DIR/groups.conf"
awk '
    { print }
    /^\[Peer\]/ { n++ }
    /^PublicKey/ && n == 1 { print "Group = ha"; print "PersistentKeepalive = 1" }
    /^PublicKey/ && n == 2 { print "Group = ha" }
    /^PublicKey/ && n == 3 { print "Lazy = off" }' "$A_CONF" >"$conf"
A_CONF=$conf # start_agent runs with it
((LAB_PEERS == 10)) || fail "expected a lab of 10 peers"

has_events() { (($(nb_trace_events "$TRACE" "$1" "$2" | jq length) >= ${3:-1})); }
to_idle_inactive='.event == "transition" and .from == "Connected" and .to == "Idle" and .reason == "inactive for 20s"'
routes() { in_a ip -4 route show dev "$WG_A" | sort && in_a ip -6 route show dev "$WG_A" | grep -v '^fe80' | sort; }
b_allowed_ips() { in_a wg show "$WG_A" allowed-ips | awk -v k="$B_PUBKEY" '$1 == k {$1 = ""; print}' | tr ' ' '\n' | sed '/^$/d' | sort; }
b_keepalive() { in_a wg show "$WG_A" persistent-keepalive | awk -v k="$B_PUBKEY" '$1 == k {print $2}'; }

# D's wake fails after 5 s, so B's keepalives are checked well inside its 20 s.
start_agent --inactivity-threshold 20s --connect-timeout 5s
nb_start_trace "$TRACE"

# --- at start: N Connected, everyone else Idle; N cannot be idled --------------------
wait_for 10 "9 Idle, 1 Connected at start" nb_counts_are 9 0 1
nb_state_is "$N_KEY" Connected || fail "never-lazy N is $(nb_peer_field "$N_KEY" state) at start"
[[ $(nb_peer_field "$N_KEY" lazy) == false ]] || fail "status does not show N as never lazy"
n_endpoint=$(in_a wg show "$WG_A" endpoints | awk -v k="$N_KEY" '$1 == k {print $2}')
[[ $n_endpoint != "(none)" && -n $n_endpoint ]] || fail "never-lazy N has no endpoint in WireGuard"
pass "at start: N Connected (endpoint $n_endpoint), the other 9 Idle"
err=$(nb_cli peer idle "$N_KEY" 2>&1) && fail "peer idle on never-lazy N succeeded: $err"
echo "$err"
grep -q "never lazy" <<<"$err" || fail "peer idle N: error does not say never lazy"
nb_state_is "$N_KEY" Connected || fail "N is not Connected after the refused peer idle"
pass "peer idle N refused: $err"

routes_at_start=$(routes)
echo "routes through $WG_A:"
echo "$routes_at_start"
grep -q '^10\.200\.0\.0/24 ' <<<"$routes_at_start" || fail "no route for B's routed subnet 10.200.0.0/24"
for ip in 10.101.0.1 10.101.0.2 10.101.0.9; do
    grep -q "^$ip " <<<"$routes_at_start" || fail "no host route for $ip"
done
b_ips_at_start=$(b_allowed_ips)
echo "B's allowed IPs: $(tr '\n' ' ' <<<"$b_ips_at_start")"
grep -qx 10.200.0.0/24 <<<"$b_ips_at_start" || fail "B lacks 10.200.0.0/24 in WireGuard"

# --- waking B wakes D (group ha) -----------------------------------------------------
ping_check "$REMOTE_V4"
wait_for 10 "B Connected" nb_state_is "$B_PUBKEY" Connected
wait_for 5 "D Idle->Connecting with reason 'group ha'" has_events "$D_KEY" \
    '.event == "transition" and .from == "Idle" and .to == "Connecting" and .reason == "group ha"'
pass "B woke by packet; D started connecting with reason 'group ha'"
[[ $(b_keepalive) == 1 ]] || fail "B's keepalive is '$(b_keepalive)' while Connected, expected 1"
pass "B Connected with PersistentKeepalive 1 in WireGuard"
# D is a dummy: its handshake never comes (--connect-timeout 5s).
wait_for 30 "D's wake to fail" has_events "$D_KEY" \
    '.event == "transition" and .from == "Connecting" and .to == "Idle" and (.reason | contains("no handshake within"))'
pass "D (a dummy) failed its handshake and went back to Idle"

# Keepalives flow to B while nothing else does: WireGuard's byte count sent to B grows.
b_tx() { in_a wg show "$WG_A" transfer | awk -v k="$B_PUBKEY" '$1 == k {print $3}'; }
tx0=$(b_tx)
tx_grew() { (($(b_tx) > tx0)); }
wait_for 10 "keepalives to B (WireGuard tx of B growing)" tx_grew
pass "keepalives flow to B while it is Connected ($tx0 -> $(b_tx) bytes sent)"

# idle_cycle N: B, Connected, goes Idle by inactivity within ~60 s despite its
# keepalive, N stays Connected, routes and allowed IPs stay, and the routed subnet then
# answers the first ping (which wakes B again).
idle_cycle() {
    local n=$1
    wait_for 60 "B Idle by inactivity (cycle $n)" has_events "$B_PUBKEY" "$to_idle_inactive" "$n"
    # From B's last Connected transition (its wake, with the ping's reply the last traffic).
    local connected_ms
    # shellcheck disable=SC2016 # jq's variables
    connected_ms=$(nb_trace_events "$TRACE" "$B_PUBKEY" '.event == "transition"' | jq --argjson n "$n" "$NB_JQ_TS_MS"'
        [.[] | {to, reason, t: ts_ms}] as $e
        | ([$e | to_entries[] | select(.value.to == "Idle" and .value.reason == "inactive for 20s")][$n - 1].key) as $i
        | $e[$i].t - ([$e[:$i][] | select(.to == "Connected")][-1].t)')
    ((connected_ms >= 19500)) || fail "B went Idle by inactivity after only $connected_ms ms Connected"
    pass "cycle $n: B Idle after $connected_ms ms Connected: reason 'inactive for 20s', keepalive notwithstanding"
    nb_state_is "$B_PUBKEY" Idle || fail "B is $(nb_peer_field "$B_PUBKEY" state), not Idle"
    [[ $(b_keepalive) == off ]] || fail "idle B still has keepalive '$(b_keepalive)'"
    nb_state_is "$N_KEY" Connected || fail "never-lazy N is $(nb_peer_field "$N_KEY" state) after the inactivity scan"
    ! has_events "$N_KEY" '.event == "transition"' || fail "N had transitions: $(nb_trace_events "$TRACE" "$N_KEY" true)"
    pass "cycle $n: never-lazy N still Connected without traffic, no transition"
    local now
    now=$(routes)
    [[ $now == "$routes_at_start" ]] || {
        diff <(echo "$routes_at_start") <(echo "$now")
        fail "routes through $WG_A changed while B went idle"
    }
    [[ $(b_allowed_ips) == "$b_ips_at_start" ]] || fail "B's allowed IPs changed: $(b_allowed_ips | tr '\n' ' ')"
    pass "cycle $n: routes (10.200.0.0/24, host routes) and B's allowed IPs intact"
    ping_check "$ROUTED_V4"
    wait_for 10 "B Connected" nb_state_is "$B_PUBKEY" Connected
    [[ $(b_keepalive) == 1 ]] || fail "B woke without its keepalive ('$(b_keepalive)')"
    wait_for 5 "D woken with B again (group ha)" has_events "$D_KEY" \
        '.event == "transition" and .to == "Connecting" and .reason == "group ha"' $((n + 1))
    pass "cycle $n: the routed subnet answered the first ping; B Connected again"
}
idle_cycle 1
idle_cycle 2

stop_agent
