#!/usr/bin/env bash
# Our tc programs run first on the WireGuard device, and the agent says when another
# program runs before them. The foreign program passes everything (tests/tools/
# tc_pass.bpf.c returns TC_ACT_OK, tcx's TCX_PASS): ahead of ours it would end the chain,
# and an idle peer's packet would reach WireGuard unheld and never wake the peer.
#  - tcx: a foreign tcx program attached before the agent starts (appended, as libbpf
#    attaches) does not get ahead of ours: B stays Idle until the ping, which is held and
#    wakes B. The same after kill -9 and a restart. One attached with BPF_F_BEFORE while
#    the agent runs is reported by `status` and in the log, and its going as well.
#  - clsact: a foreign filter at our priority (cls_bpf runs the newest first) and a tcx
#    program (tcx runs before clsact) are reported; a restart after kill -9 that finds a
#    foreign filter ahead of its stale one puts ours first again.
# NB_TEST_ATTACH (the kernel matrix) picks one mode; otherwise every mode this kernel has.
source "$(dirname "$0")/lib.sh"
require_privileges
require_agent
lab_up --peers 10

BUILD_DIR=${BUILD:-$NB_REPO_ROOT/build}
OBJ=${NB_TC_PASS_OBJ:-$BUILD_DIR/tests/tc_pass.bpf.o}
TCX_HOLD=${NB_TCX_HOLD:-$BUILD_DIR/tests/tcx_hold}
[[ -f $OBJ ]] || fail "foreign program object $OBJ not built"
[[ -x $TCX_HOLD ]] || fail "tcx_hold not built ($TCX_HOLD)"

have_tcx=false
[[ $("$NBAGENT" features --json | jq -r .tcx.ok) == true ]] && have_tcx=true
if [[ -n ${NB_TEST_ATTACH:-} ]]; then
    modes=("$NB_TEST_ATTACH")
    [[ $NB_TEST_ATTACH != tcx || $have_tcx == true ]] || skip "kernel $(uname -r) has no tcx (< 6.6)"
else
    modes=(clsact)
    [[ $have_tcx == true ]] && modes+=(tcx)
fi

order() { nb_cli status --json | jq -c .datapath_order; }
ahead() { nb_cli status --json | jq -c "[.datapath_order.ahead[] | select($1)] | length"; }
is_first() { [[ $(nb_cli status --json | jq -c '.datapath_order | [.checked, (.ahead | length)]') == '[true,0]' ]]; }
has_ahead() { [[ $(ahead "$1") -ge 1 ]]; }
b_field() { nb_peer_json "$B_PUBKEY" | jq -r ".$1"; }
b_idle() { [[ $(b_field state) == Idle ]]; }

# tcx_foreign FILE ARGS...: a foreign tcx program held by tcx_hold in A until the test
# kills it (or ends); its program id in FOREIGN_ID, its pid in FOREIGN_PID.
tcx_foreign() {
    local out=$1
    shift
    nb_start_listener "$out" ip netns exec "$NS_A" "$TCX_HOLD" --dev "$WG_A" --obj "$OBJ" --prog foreign_pass "$@"
    FOREIGN_PID=$NB_LISTENER_PID
    FOREIGN_ID=$(awk '$1 == "prog_id" {print $2}' "$out")
    [[ -n $FOREIGN_ID ]] || fail "tcx_hold printed no program id"
}
kill_foreign() {
    kill -TERM "$1"
    wait "$1" 2>/dev/null || true
}

# An idle B's first packet is held by our program, wakes B and is answered.
held_ping_check() {
    # After a restart, B's live session from the last ping is kept (Connected): idle it.
    [[ $(b_field state) != Connected ]] || nb_cli peer idle "$B_PUBKEY" >/dev/null
    wait_for 10 "B to be Idle" b_idle
    local held
    held=$(b_field held)
    ping_check "$REMOTE_V4"
    (($(b_field held) > held)) || fail "$1: the ping to idle B was not held by our program (held $held -> $(b_field held))"
    [[ $(b_field state) == Connected ]] || fail "$1: B is $(b_field state) after the ping"
    pass "$1: the ping to idle B was held by our program, woke B and was answered"
}

# The agent creates the interface; a clean stop leaves it for the foreign programs.
start_agent
stop_agent

for mode in "${modes[@]}"; do
    echo "=== attach mode $mode"
    if [[ $mode == tcx ]]; then
        tcx_foreign "$LAB_DIR/foreign-early.out" --hook both
        early_pid=$FOREIGN_PID early_id=$FOREIGN_ID
        pass "tcx: foreign program $early_id attached on both hooks before the agent"
        start_agent --attach tcx
        [[ $(nb_cli status --json | jq -r .attach_mode) == tcx ]] || fail "not attached with tcx"
        held_ping_check "tcx, foreign program attached earlier"
        wait_for 5 "status to say our programs run first" is_first
        nb_cli status | grep -q '^datapath:   first on ingress and egress$' || fail "tcx: text status: $(nb_cli status)"
        grep -q 'our tc programs run first on ingress and egress (tcx)' "$AGENT_LOG" || fail "tcx: no 'first' line in the log"
        pass "tcx: our programs went ahead of the foreign one: status and log say first"

        # kill -9: the links die with the agent; the restart attaches first again.
        kill_agent
        start_agent --attach tcx
        held_ping_check "tcx, restart after kill -9"
        wait_for 5 "status to say our programs run first after the restart" is_first

        # A program attached ahead of ours while the agent runs: reported within a check.
        tcx_foreign "$LAB_DIR/foreign-late.out" --hook egress --first
        late_pid=$FOREIGN_PID late_id=$FOREIGN_ID
        wait_for 12 "status to report program $late_id before ours on egress" \
            has_ahead ".direction == \"egress\" and .hook == \"tcx\" and .id == $late_id and .name == \"foreign_pass\""
        [[ $(ahead 'true') == 1 ]] || fail "tcx: expected only the late program ahead: $(order)"
        nb_cli status | grep -q "^datapath:   warning: 1 program runs before ours on egress (tcx id $late_id, name foreign_pass)$" ||
            fail "tcx: text status: $(nb_cli status)"
        nb_cli status | grep -q '^            first on ingress$' || fail "tcx: text status: $(nb_cli status)"
        grep -q "tcx program id $late_id, name foreign_pass runs before ours on egress" "$AGENT_LOG" ||
            fail "tcx: no warning in the log"
        pass "tcx: a program attached before ours (BPF_F_BEFORE) is reported: $(nb_cli status | grep -A1 '^datapath')"
        kill_foreign "$late_pid"
        wait_for 12 "status to say first again" is_first
        grep -q 'nothing runs before them now' "$AGENT_LOG" || fail "tcx: the log does not say first again"
        pass "tcx: once it is gone, status and log say first again"
        stop_agent
        kill_foreign "$early_pid"
    else
        # A foreign filter after ours (pref 10) is no concern.
        in_a tc qdisc show dev "$WG_A" | grep -q clsact || in_a tc qdisc add dev "$WG_A" clsact
        in_a tc filter add dev "$WG_A" egress pref 10 bpf da obj "$OBJ" sec tc
        start_agent --attach clsact
        [[ $(nb_cli status --json | jq -r .attach_mode) == clsact ]] || fail "not attached with clsact"
        held_ping_check "clsact, foreign filter at pref 10"
        wait_for 5 "status to say our filters run first" is_first
        nb_cli status | grep -q '^datapath:   first on ingress and egress$' || fail "clsact: text status: $(nb_cli status)"

        # cls_bpf runs a filter added at our priority before the older ones.
        in_a tc filter add dev "$WG_A" egress protocol all pref 1 handle 0x7 bpf da obj "$OBJ" sec tc
        wait_for 12 "status to report the pref 1 filter" \
            has_ahead '.direction == "egress" and .hook == "clsact" and .priority == 1 and .handle == 7'
        nb_cli status | grep -q '^datapath:   warning: 1 program runs before ours on egress (clsact pref 1 handle 0x7, id [0-9]*, name foreign_pass)$' ||
            fail "clsact: text status: $(nb_cli status)"
        pass "clsact: a filter at our priority, added later, is reported"

        # After kill -9 it is ahead of our stale filter; the restart puts ours first.
        kill_agent
        start_agent --attach clsact
        held_ping_check "clsact, restart with a foreign filter at our priority"
        wait_for 5 "status to say first after the restart" is_first
        [[ $(in_a tc filter show dev "$WG_A" egress | grep -c 'handle 0x6e62') == 1 ]] || fail "clsact: our filter duplicated"
        in_a tc filter show dev "$WG_A" egress | grep handle | head -n 1 | grep -q 'handle 0x6e62' ||
            fail "clsact: ours is not the first filter: $(in_a tc filter show dev "$WG_A" egress)"
        pass "clsact: after the restart ours is the first filter again, not duplicated"
        in_a tc filter del dev "$WG_A" egress pref 1 handle 0x7 bpf

        # Every tcx program runs before the clsact filters.
        if [[ $have_tcx == true ]]; then
            tcx_foreign "$LAB_DIR/foreign-clsact.out" --hook ingress
            wait_for 12 "status to report tcx program $FOREIGN_ID before our clsact filter" \
                has_ahead ".direction == \"ingress\" and .hook == \"tcx\" and .id == $FOREIGN_ID"
            pass "clsact: a tcx program on the device is reported as running before ours"
            kill_foreign "$FOREIGN_PID"
            wait_for 12 "status to say first again" is_first
        else
            echo "clsact: no tcx program can run before clsact: kernel $(uname -r) has no tcx (< 6.6)"
        fi
        stop_agent
        in_a tc filter del dev "$WG_A" egress pref 10
    fi
done
