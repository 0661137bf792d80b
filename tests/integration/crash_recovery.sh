#!/usr/bin/env bash
# kill -9 of the agent, then a restart, on both attach modes: no filter duplicated,
# nothing stale attached, no peer stuck or unreachable. Also after a crash, adopting
# the interface (no -c) gets the idle peers' endpoints back from the state file.
source "$(dirname "$0")/lib.sh"
require_privileges
require_agent
lab_up --peers 200

# Our programs on the device: tcx links to nb_* programs (bpftool 7.1 cannot list tcx
# per device; ctest runs this test alone (RUN_SERIAL), so a global count is exact) and
# clsact filters.
tcx_links() {
    local ids
    ids=$(bpftool -j prog show | jq -c '[.[] | select(.name == "nb_egress" or .name == "nb_ingress") | .id]')
    bpftool -j link show | jq --argjson ids "$ids" '[.[] | select(.prog_id as $p | $ids | index($p))] | length'
}
kill9_agent() {
    kill_agent
    pass "agent killed with SIGKILL"
}

# tcx where the kernel has it (the probe says so), clsact everywhere.
modes=(clsact)
[[ $("$NBAGENT" features --json | jq -r .tcx.ok) == true ]] && modes=(tcx clsact)
for mode in "${modes[@]}"; do
    echo "=== attach mode $mode"
    start_agent --attach "$mode"
    [[ $(nb_cli status --json | jq -r .attach_mode) == "$mode" ]] || fail "not attached with $mode"
    ping_check "$REMOTE_V4"
    kill9_agent

    case $mode in
        tcx) [[ $(tcx_links) == 0 ]] || fail "tcx links survived the agent: $(tcx_links)" ;;
        clsact) [[ $(nb_clsact_filters) == 2 ]] || fail "expected the 2 stale clsact filters, found $(nb_clsact_filters)" ;;
    esac
    pass "$mode: after SIGKILL the device has what the kernel keeps ($( [[ $mode == tcx ]] && echo "no links" || echo "2 stale filters"))"

    # Restart from the config: takes over, never duplicates.
    # B answered a ping before the crash: its live session is kept, Connected.
    start_agent --attach "$mode"
    [[ $(nb_counts) == "199 0 1" ]] || fail "after restart: $(nb_counts), expected B's live session Connected"
    case $mode in
        tcx) [[ $(tcx_links) == 2 ]] || fail "expected 2 tcx links after restart, found $(tcx_links)" ;;
        clsact) [[ $(nb_clsact_filters) == 2 ]] || fail "expected 2 clsact filters after restart, found $(nb_clsact_filters)" ;;
    esac
    pass "$mode: restart with -c: 199 Idle, B's live session Connected, exactly one ingress and one egress program"
    ping_check "$REMOTE_V4"
    udp_burst_check "$REMOTE_V6"
    kill9_agent

    # Restart by adopting (no -c): the idle peers' endpoints come from the state file.
    start_agent --adopt --attach "$mode"
    [[ $(nb_counts) == "199 0 1" ]] || fail "adopt after crash: $(nb_counts), expected B's live session Connected"
    ping_check "$REMOTE_V4"
    pass "$mode: adopt after SIGKILL: 199 Idle, B (live session) Connected and answering"
    stop_agent
    [[ $(tcx_links) == 0 && $(nb_clsact_filters) == 0 ]] || fail "$mode: programs left after a clean stop"
    eps=$(in_a wg show "$WG_A" endpoints | awk '$2 != "(none)"' | wc -l)
    [[ $eps == 200 ]] || fail "$mode: $eps of 200 endpoints restored after the clean stop"
    pass "$mode: clean stop: nothing attached, all 200 endpoints restored"
    [[ ! -e $AGENT_RUN_DIR/$WG_A.peers.json ]] || fail "state file left after a clean stop"
done
