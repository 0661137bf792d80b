#!/usr/bin/env bash
# nbagent shares the device's tc hooks: it never deletes another user's qdisc or filters,
# and removes only its own, on a clean stop and when taking over after kill -9.
source "$(dirname "$0")/lib.sh"
require_privileges
require_agent
lab_up --peers 10

# The foreign filter: a pass-everything BPF program (tests/tools/tc_pass.bpf.c); this
# kernel may have no other classifier than cls_bpf.
OBJ=${NB_TC_PASS_OBJ:-${BUILD:-$NB_REPO_ROOT/build}/tests/tc_pass.bpf.o}
[[ -f $OBJ ]] || fail "foreign filter object $OBJ not built"
foreign() { in_a tc filter show dev "$WG_A" "$1" | grep -c 'foreign_pass' || true; }
ours() { in_a tc filter show dev "$WG_A" "$1" | grep -c 'nb_\(egress\|ingress\)' || true; }

# The agent creates the interface; a clean stop leaves it for the next start.
start_agent
stop_agent
# Someone else's clsact qdisc with a filter on each hook, before the agent starts again.
# (A clean stop after clsact leaves the qdisc in place: it is shared and never deleted.)
in_a tc qdisc show dev "$WG_A" | grep -q clsact || in_a tc qdisc add dev "$WG_A" clsact
in_a tc filter add dev "$WG_A" ingress pref 10 bpf da obj "$OBJ" sec tc
in_a tc filter add dev "$WG_A" egress pref 10 bpf da obj "$OBJ" sec tc

modes=(clsact)
[[ $("$NBAGENT" features --json | jq -r .tcx.ok) == true ]] && modes+=(tcx)
for mode in "${modes[@]}"; do
    start_agent --attach "$mode"
    ping_check "$REMOTE_V4"
    [[ $(foreign ingress) == 1 && $(foreign egress) == 1 ]] || fail "$mode: foreign filters disturbed"
    if [[ $mode == clsact ]]; then
        [[ $(ours ingress) == 1 && $(ours egress) == 1 ]] || fail "clsact: ours not attached once per hook"
    fi
    pass "$mode: the agent runs beside another user's filters"

    kill_agent
    start_agent --attach "$mode"
    [[ $(foreign ingress) == 1 && $(foreign egress) == 1 ]] || fail "$mode: takeover after kill -9 touched foreign filters"
    if [[ $mode == clsact ]]; then
        [[ $(ours ingress) == 1 && $(ours egress) == 1 ]] || fail "clsact: takeover duplicated our filters"
    fi
    ping_check "$REMOTE_V6"
    pass "$mode: takeover after kill -9 replaces only our own filters"

    stop_agent
    [[ $(ours ingress) == 0 && $(ours egress) == 0 ]] || fail "$mode: our filters left after a clean stop"
    [[ $(foreign ingress) == 1 && $(foreign egress) == 1 ]] || fail "$mode: clean stop removed foreign filters"
    in_a tc qdisc show dev "$WG_A" | grep -q clsact || fail "$mode: the shared clsact qdisc was deleted"
    pass "$mode: clean stop removed only our filters; the qdisc and foreign filters stay"
done
