#!/usr/bin/env bash
# Lazy mode off (--lazy-conn=false, NB_LAZY_CONN=off, NB_ENABLE_EXPERIMENTAL_LAZY_CONN=false):
# every peer gets its endpoint at start and no program is attached.
source "$(dirname "$0")/lib.sh"
require_privileges
require_agent
lab_up --peers 50

b_endpoint() { in_a wg show "$WG_A" endpoints | awk -v k="$B_PUBKEY" '$1 == k {print $2}'; }
# Attached nbagent programs: tcx links to nb_* programs plus clsact filters on the device
# (bpftool 7.1 cannot list tcx links per device, so links are matched by program; ctest
# runs this test alone, RUN_SERIAL, so no other agent's links count).
attached() {
    local ids links filters dir
    ids=$(bpftool -j prog show | jq -c '[.[] | select(.name == "nb_egress" or .name == "nb_ingress") | .id]')
    links=$(bpftool -j link show | jq --argjson ids "$ids" '[.[] | select(.prog_id as $p | $ids | index($p))] | length')
    filters=0
    for dir in ingress egress; do
        filters=$((filters + $(in_a tc filter show dev "$WG_A" "$dir" 2>/dev/null | grep -c 'nb_\(egress\|ingress\)' || true)))
    done
    echo $((links + filters))
}
counts() { nb_cli status --json | jq -r '"\(.lazy) \(.counts.idle) \(.counts.connecting) \(.counts.connected)"'; }

# check_eager HOW: the running agent is eager: 50 Connected, endpoints set, no tc program.
check_eager() {
    local how=$1
    [[ $(counts) == "false 0 0 50" ]] || fail "$how: status says $(counts), expected eager with 50 Connected"
    [[ $(b_endpoint) == "$UNDERLAY_B:51820" ]] || fail "$how: B's endpoint is $(b_endpoint)"
    [[ $(attached) == 0 ]] || fail "$how: eager mode attached $(attached) programs"
    pass "$how: eager, 50 peers Connected with endpoints, no program attached"
    ping_check "$REMOTE_V4"
    stop_agent
}

start_agent --lazy-conn=false
check_eager "--lazy-conn=false"

NB_LAZY_CONN=off start_agent
check_eager "NB_LAZY_CONN=off"

NB_ENABLE_EXPERIMENTAL_LAZY_CONN=false start_agent
check_eager "NB_ENABLE_EXPERIMENTAL_LAZY_CONN=false"

# The flag wins over the environment. (B answered the last eager run's ping: its live
# session is kept, Connected.)
NB_LAZY_CONN=off start_agent --lazy-conn=true
[[ $(counts) == "true 49 0 1" ]] || fail "--lazy-conn=true with NB_LAZY_CONN=off: $(counts)"
[[ $(attached) == 2 ]] || fail "lazy mode should attach 2 programs, found $(attached)"
pass "--lazy-conn=true overrides NB_LAZY_CONN=off (and attaches ingress and egress)"
stop_agent

rc=0
NB_LAZY_CONN=maybe in_a "$NBAGENT" run -i "$WG_A" -c "$A_CONF" --run-dir "$AGENT_RUN_DIR" \
    >"$LAB_DIR/badenv.out" 2>&1 </dev/null || rc=$?
((rc != 0)) || fail "NB_LAZY_CONN=maybe was accepted"
grep -q "NB_LAZY_CONN" "$LAB_DIR/badenv.out" || fail "bad env error: $(cat "$LAB_DIR/badenv.out")"
pass "NB_LAZY_CONN=maybe refused: '$(head -n1 "$LAB_DIR/badenv.out")'"
