# shellcheck shell=bash
# Helpers for the integration tests (sourced, not run). Each test script:
#   source "$(dirname "$0")/lib.sh"
#   require_privileges            # SKIP (exit 77) or, under CI, FAIL when impossible
#   lab_up --peers 1000           # namespaces + remote wireguard-go, sources env.sh
#   ... checks; any failure calls fail, cleanup runs on every exit ...
# Inputs from ctest: NBAGENT (path to nbagent, may be unset), NBTRAFFIC (path to nbtraffic).
set -euo pipefail

NB_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
NB_LAB_SH="$NB_REPO_ROOT/scripts/lab.sh"
NB_TEST_NAME=$(basename "${0%.sh}")
NB_BG_PIDS=()
# Shell commands nb_cleanup runs before the lab goes (e.g. unmounting what a test mounted).
NB_CLEANUP_CMDS=()
NB_SHOW_ON_FAILURE=() # files whose last lines help explain a failure
NB_LAB_NAME=""
AGENT_PID=""
AGENT_LOG=""
AGENT_B_PID="" # a second agent, on side B (start_agent_b)
AGENT_B_LOG=""
NB_TRACE_PID="" # the last nb_start_trace
NB_CHECKS_PASSED=0
NB_CLEANUP_HOOKS=() # commands nb_cleanup runs first (e.g. SIGCONT to a stopped daemon)

nb_skips_are_failures() { [[ ${CI:-} == true || ${NB_REQUIRE_PRIVILEGED:-} == 1 ]]; }

# Skip with a reason (exit 77, ctest's SKIP_RETURN_CODE), or fail where CI forbids skipping.
skip() {
    if nb_skips_are_failures; then
        echo "FAIL: $* (CI=true or NB_REQUIRE_PRIVILEGED=1: skipping is not allowed)"
        exit 1
    fi
    echo "SKIP: $*"
    exit 77
}

fail() {
    echo "FAIL: $*"
    exit 1
}

pass() {
    NB_CHECKS_PASSED=$((NB_CHECKS_PASSED + 1))
    echo "PASS: $*"
}

# Runs a command that must succeed; its output is shown, a failure ends the test.
check() {
    local desc=$1
    shift
    echo "--- $desc: $*"
    if "$@"; then
        pass "$desc"
    else
        fail "$desc (exit $?)"
    fi
}

require_privileges() {
    [[ $(id -u) -eq 0 ]] || skip "needs root"
    command -v ip >/dev/null || skip "ip (iproute2) not installed"
    local probe="nbprobe$$"
    ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces (ip netns add)"
    ip netns del "$probe"
    # Kernel WireGuard labs need no wireguard-go (Debian 11 does not package it).
    if [[ ${NB_TEST_WG:-userspace} == userspace ]]; then
        command -v wireguard-go >/dev/null || skip "wireguard-go not installed"
    fi
    command -v wg >/dev/null || skip "wg (wireguard-tools) not installed"
    [[ -c /dev/net/tun ]] || skip "/dev/net/tun missing"
    if ! mountpoint -q /sys/fs/bpf; then
        mount -t bpf bpf /sys/fs/bpf 2>/dev/null || skip "cannot mount bpffs on /sys/fs/bpf"
    fi
    command -v jq >/dev/null || skip "jq not installed (scripts/setup.sh installs it)"
    [[ -n ${NBTRAFFIC:-} && -x ${NBTRAFFIC:-} ]] || skip "nbtraffic not built (NBTRAFFIC='${NBTRAFFIC:-}')"
    nb_reap_stale_labs
}

# The agent under test. Without the binary this is a plain skip even under CI: the
# configure step only passes NBAGENT when the nbagent target exists, and a target that
# exists but fails to build already fails the build.
require_agent() {
    if [[ -z ${NBAGENT:-} || ! -x ${NBAGENT:-} ]]; then
        echo "SKIP: nbagent not built (NBAGENT='${NBAGENT:-}')"
        exit 77
    fi
}

# Kernel WireGuard, tried for real in a throwaway namespace. Without it this is a plain
# skip even under CI: hosts without the module (this CI machine's kernel) are expected,
# not a missing privilege, and the qemu kernel matrix (vagrant/qemu) runs these tests on
# kernels that have it.
require_kernel_wireguard() {
    local probe="nbwgprobe$$" ok=0
    ip netns add "$probe" 2>/dev/null || skip "cannot create network namespaces (ip netns add)"
    ip -n "$probe" link add wgprobe type wireguard 2>/dev/null && ok=1
    ip netns del "$probe"
    if ((!ok)); then
        echo "SKIP: kernel has no WireGuard module (runs in the qemu matrix)"
        exit 77
    fi
}

# Labs of earlier runs killed before their trap ran (a ctest timeout sends SIGKILL):
# their names carry the dead test's pid.
nb_reap_stale_labs() {
    local ns pid
    for ns in $(ip netns list | awk '{print $1}' | sed -n 's/^\(nbt[0-9]\+\)-a$/\1/p'); do
        pid=${ns#nbt}
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "reaping stale lab $ns"
            bash "$NB_LAB_SH" down "$ns" >/dev/null 2>&1 || true
        fi
    done
}

nb_cleanup() {
    local rc=$?
    set +e
    local hook
    for hook in "${NB_CLEANUP_HOOKS[@]}"; do eval "$hook"; done
    if [[ -n $AGENT_PID ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -TERM "$AGENT_PID" 2>/dev/null
        nb_wait_pid "$AGENT_PID" 10 || kill -KILL "$AGENT_PID" 2>/dev/null
    fi
    if [[ -n $AGENT_B_PID ]] && kill -0 "$AGENT_B_PID" 2>/dev/null; then
        kill -TERM "$AGENT_B_PID" 2>/dev/null
        nb_wait_pid "$AGENT_B_PID" 10 || kill -KILL "$AGENT_B_PID" 2>/dev/null
    fi
    if ((rc != 0 && rc != 77)); then
        local f
        for f in "$AGENT_LOG" "$AGENT_B_LOG" "${NB_SHOW_ON_FAILURE[@]}"; do
            [[ -n $f && -s $f ]] || continue
            echo "--- last lines of $f:"
            tail -n 40 "$f"
        done
    fi
    local pid
    for pid in "${NB_BG_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    local cmd
    for cmd in "${NB_CLEANUP_CMDS[@]}"; do
        eval "$cmd"
    done
    if [[ -n $NB_LAB_NAME ]]; then
        bash "$NB_LAB_SH" down "$NB_LAB_NAME" --dir "$LAB_DIR" >/dev/null 2>&1
    fi
    if ((rc == 0)); then
        echo "$NB_TEST_NAME: $NB_CHECKS_PASSED checks passed"
    elif ((rc != 77)); then
        echo "$NB_TEST_NAME: FAILED after $NB_CHECKS_PASSED passed checks"
    fi
    exit "$rc"
}
trap nb_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for TIMEOUT_SECONDS DESCRIPTION COMMAND...: polls every 0.1 s until COMMAND succeeds.
wait_for() {
    local timeout=$1 desc=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $desc"
        sleep 0.1
    done
}

# nb_wait_pid PID TIMEOUT_SECONDS: true once PID is gone.
nb_wait_pid() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# The kernel matrix (vagrant/qemu/run-matrix.sh) runs a scenario with a chosen WireGuard
# backend and attach mode through NB_TEST_WG (userspace|kernel: side B and the agent)
# and NB_TEST_ATTACH (the agent); a test's own --wg/--attach arguments win.
# lab_up [--peers N] [--wg userspace|kernel]: a lab named after this test's pid; exports the variables of env.sh.
lab_up() {
    # lab.sh takes the last --wg given; kernel WireGuard where there is none is a skip.
    local wg=${NB_TEST_WG:-userspace} args=("$@") i
    for ((i = 0; i + 1 < ${#args[@]}; i++)); do
        [[ ${args[i]} == --wg ]] && wg=${args[i + 1]}
    done
    [[ $wg == kernel ]] && require_kernel_wireguard
    NB_LAB_NAME="nbt$$"
    LAB_DIR="/run/nbagent-lab/$NB_LAB_NAME"
    bash "$NB_LAB_SH" up "$NB_LAB_NAME" --dir "$LAB_DIR" ${NB_TEST_WG:+--wg "$NB_TEST_WG"} "$@"
    # shellcheck source=/dev/null
    source "$LAB_DIR/env.sh"
    export NS_A NS_B WG_A WG_B A_CONF B_CONF A_PUBKEY B_PUBKEY REMOTE_V4 REMOTE_V6 ROUTED_V4 ROUTED_V6 \
        UNDERLAY_A UNDERLAY_B LAB_DIR LAB_PEERS LAB_WG
    AGENT_RUN_DIR="$LAB_DIR/run"
    AGENT_B_RUN_DIR="$LAB_DIR/run-b"
}

lab_down() {
    [[ -n $NB_LAB_NAME ]] || return 0
    bash "$NB_LAB_SH" down "$NB_LAB_NAME" --dir "$LAB_DIR"
    NB_LAB_NAME=""
}

in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# nbagent's client commands against this lab's agent: nb_cli status --json, ...
nb_cli() {
    local cmd=("$@")
    in_a "$NBAGENT" "${cmd[@]}" -i "$WG_A" --run-dir "$AGENT_RUN_DIR"
}

# _nb_side a|b: sets the caller's locals ns, dev and run_dir (bash's dynamic scope) to
# that side's namespace, WireGuard interface and agent run directory.
_nb_side() {
    case $1 in
        a) ns=$NS_A dev=$WG_A run_dir=$AGENT_RUN_DIR ;;
        b) ns=$NS_B dev=$WG_B run_dir=$AGENT_B_RUN_DIR ;;
        *) fail "side must be a or b, not '$1'" ;;
    esac
}

# _start_agent_on a|b [ARGS...]: start_agent's body for either side. Side A's agent is
# AGENT_PID/AGENT_LOG (agent.N.log) with $A_CONF and nb_cli; side B's AGENT_B_PID/
# AGENT_B_LOG (agent-b.N.log) with $B_CONF and nb_cli_b.
_start_agent_on() {
    local side=$1 ns dev run_dir
    shift
    _nb_side "$side"
    local conf=$A_CONF log_prefix=agent what=agent cli=nb_cli pid_name=AGENT_PID log_name=AGENT_LOG
    if [[ $side == b ]]; then
        conf=$B_CONF log_prefix=agent-b what="agent B" cli=nb_cli_b
        pid_name=AGENT_B_PID log_name=AGENT_B_LOG
    fi
    local -n pid_var=$pid_name log_var=$log_name # AGENT_PID or AGENT_B_PID, ...
    local args=(run -i "$dev" --run-dir "$run_dir")
    if [[ ${1:-} == --adopt ]]; then
        shift
    else
        args+=(-c "$conf")
    fi
    args+=("$@")
    [[ -n ${NB_TEST_WG:-} && " $* " != *" --wg"* ]] && args+=(--wg "$NB_TEST_WG")
    [[ -n ${NB_TEST_ATTACH:-} && " $* " != *" --attach"* ]] && args+=(--attach "$NB_TEST_ATTACH")
    [[ -n ${NB_TEST_TRIGGER:-} && " $* " != *" --trigger"* ]] && args+=(--trigger "$NB_TEST_TRIGGER")
    # NB_TEST_NO_BPF=1: the agent runs where bpf() fails with ENOSYS (tests/tools/no_bpf).
    local wrap=()
    if [[ ${NB_TEST_NO_BPF:-} == 1 ]]; then
        [[ -x ${NB_NO_BPF:-} ]] || fail "NB_TEST_NO_BPF=1 but no_bpf is not built (NB_NO_BPF='${NB_NO_BPF:-}')"
        wrap=("$NB_NO_BPF")
    fi
    local n=1
    while [[ -e $LAB_DIR/$log_prefix.$n.log ]]; do n=$((n + 1)); done
    log_var="$LAB_DIR/$log_prefix.$n.log"
    echo "--- starting $what: $NBAGENT ${args[*]} (log $log_var)"
    # Not through in_a/in_b: $! must be the agent itself (ip netns exec execs it), not a
    # subshell, so that SIGTERM reaches it and `wait` returns its exit code.
    ip netns exec "$ns" "${wrap[@]}" "$NBAGENT" "${args[@]}" >"$log_var" 2>&1 </dev/null &
    pid_var=$!
    # NB_AGENT_START_TIMEOUT: big maps under emulation take minutes to install.
    local limit=${NB_AGENT_START_TIMEOUT:-30}
    local deadline=$((SECONDS + limit))
    until "$cli" status >/dev/null 2>&1; do
        kill -0 "$pid_var" 2>/dev/null || {
            local rc=0
            wait "$pid_var" || rc=$?
            pid_var=""
            fail "$what exited with $rc before answering status"
        }
        ((SECONDS < deadline)) || fail "$what did not answer status within $limit s"
        sleep 0.1
    done
    pass "$what started (pid $pid_var) and answers status"
}

# _stop_agent_on a|b: stop_agent's body for either side.
_stop_agent_on() {
    local what=agent pid_name=AGENT_PID
    [[ $1 == b ]] && what="agent B" pid_name=AGENT_B_PID
    local -n pid_var=$pid_name
    [[ -n $pid_var ]] || fail "stop $what: no agent running"
    kill -TERM "$pid_var"
    local limit=${NB_AGENT_STOP_TIMEOUT:-20}
    nb_wait_pid "$pid_var" "$limit" || fail "$what did not exit within $limit s of SIGTERM"
    local rc=0
    wait "$pid_var" || rc=$?
    pid_var=""
    ((rc == 0)) || fail "$what exited with $rc after SIGTERM"
    pass "$what stopped with exit code 0"
}

# kill_agent: SIGKILL to side A's agent, as in a crash: nothing of its shutdown runs.
kill_agent() {
    kill -KILL "$AGENT_PID"
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
}

# stop_agent_unrestored HOW: stop_agent while WireGuard does not answer (HOW says why):
# exit 0 within 10 s all the same, warning that the endpoints were not restored.
stop_agent_unrestored() {
    NB_AGENT_STOP_TIMEOUT=10 stop_agent
    grep -q "endpoints not restored" "$AGENT_LOG" || fail "$1: no warning that endpoints were not restored"
    pass "$1: warned: $(grep -m1 "endpoints not restored" "$AGENT_LOG")"
}

# start_agent [--adopt] [ARGS...]: `nbagent run` in side A with the lab's config (or,
# with --adopt, without -c: adopting the existing interface), in the background, logging
# to $LAB_DIR/agent.N.log; returns once `nbagent status` answers.
start_agent() { _start_agent_on a "$@"; }

# stop_agent: SIGTERM, and the agent must exit 0 within NB_AGENT_STOP_TIMEOUT (20 s).
stop_agent() { _stop_agent_on a; }

# A second agent, in side B, on B's existing interface with $B_CONF (A as its only
# peer, lazy): for tests with lazy peers on both ends. Its client commands: nb_cli_b.
nb_cli_b() {
    local cmd=("$@")
    in_b "$NBAGENT" "${cmd[@]}" -i "$WG_B" --run-dir "$AGENT_B_RUN_DIR"
}

# start_agent_b [--adopt] [ARGS...]: like start_agent, for side B; logs to
# $LAB_DIR/agent-b.N.log.
start_agent_b() { _start_agent_on b "$@"; }

# stop_agent_b: like stop_agent, for agent B.
stop_agent_b() { _stop_agent_on b; }

# require_wireguard_go VERB: a test that VERBs (kill, stop) wireguard-go skips on kernel
# WireGuard, which has no daemon to VERB.
require_wireguard_go() {
    [[ ${NB_TEST_WG:-userspace} == userspace ]] && return 0
    echo "SKIP: ${1}s wireguard-go; kernel WireGuard has no daemon to $1"
    exit 77
}

# nb_promtool: prints promtool's path (PATH, or where scripts/setup.sh unpacked it from
# Debian's prometheus package), or returns 1.
nb_promtool() {
    local p
    for p in "$(command -v promtool)" /var/cache/nbagent-test/promtool; do
        [[ -n $p && -x $p ]] && { echo "$p"; return 0; }
    done
    return 1
}

# The lab's second peer of side A: a dummy nobody answers for ($A_CONF's second key).
nb_dummy_key() { awk '/^PublicKey/ && ++n == 2 {print $3}' "$A_CONF"; }

# nb_wg_state_is STATE: the agent's WireGuard health (ok, not answering, lost).
nb_wg_state_is() { [[ $(nb_cli status --json | jq -r '.wireguard.state') == "$1" ]]; }

# The eager baselines (no agent): side A's WireGuard from $A_CONF by hand (wg setconf
# takes only WireGuard's own keys: wg-quick's Address line is dropped), its addresses,
# the link up and the routed subnet.
configure_side_a_by_hand() {
    grep -v '^[[:space:]]*Address[[:space:]]*=' "$A_CONF" >"$LAB_DIR/a.wg"
    check "wg setconf with $LAB_PEERS peers" in_a wg setconf "$WG_A" "$LAB_DIR/a.wg"
    ip -n "$NS_A" addr add 10.100.0.1/16 dev "$WG_A"
    ip -n "$NS_A" addr add fd10:100::1/64 dev "$WG_A" nodad
    ip -n "$NS_A" link set "$WG_A" up
    ip -n "$NS_A" route add 10.200.0.0/24 dev "$WG_A"
    ip -n "$NS_A" route add fd10:200::/64 dev "$WG_A"
}

# eager_baseline_checks WHAT: side A's WireGuard (WHAT) holds every peer; B and the routed
# subnet answer over IPv4 and IPv6; B learned A's endpoint by roaming (proof the handshake
# ran over the underlay).
eager_baseline_checks() {
    local configured endpoint addr
    configured=$(in_a wg show "$WG_A" peers | wc -l)
    ((configured == LAB_PEERS)) || fail "$1 has $configured peers, the config has $LAB_PEERS"
    pass "$1 holds all $configured peers"
    for addr in "$REMOTE_V4" "$REMOTE_V6" "$ROUTED_V4" "$ROUTED_V6"; do ping_check "$addr"; done
    for addr in "$REMOTE_V4" "$REMOTE_V6"; do udp_burst_check "$addr" 100 10; done
    for addr in "$REMOTE_V4" "$REMOTE_V6"; do tcp_connect_check "$addr"; done
    endpoint=$(in_b wg show "$WG_B" endpoints | awk '{print $2}')
    [[ $endpoint == "$UNDERLAY_A:51820" ]] || fail "B sees A at '$endpoint', expected $UNDERLAY_A:51820"
    pass "B learned A's endpoint $endpoint"
}

# Starts a background command whose stdout goes to FILE, and waits for "ready" in it.
nb_start_listener() {
    local file=$1
    shift
    : >"$file" # exists before the child's own redirection: we poll it at once
    "$@" >"$file" 2>&1 &
    NB_LISTENER_PID=$!
    NB_BG_PIDS+=("$NB_LISTENER_PID")
    local deadline=$((SECONDS + 10))
    until grep -qx ready "$file"; do
        if ! kill -0 "$NB_LISTENER_PID" 2>/dev/null; then
            cat "$file"
            fail "listener exited before it was ready: $*"
        fi
        ((SECONDS < deadline)) || fail "listener not ready within 10 s: $*"
        sleep 0.05
    done
}

# Collects a listener started by nb_start_listener; prints its output, returns its code.
nb_finish_listener() {
    local file=$1 rc=0
    wait "$NB_LISTENER_PID" || rc=$?
    cat "$file"
    return "$rc"
}

NB_PORT=5000
nb_next_port() { NB_PORT=$((NB_PORT + 1)); }

# udp_burst_check ADDR [COUNT] [WITHIN_MS]: from A, COUNT datagrams within WITHIN_MS to
# ADDR (an address of B) must all arrive at B, in order. NB_BURST_ORDER=any: in any order
# (the UDP trigger engine cannot keep WireGuard from reordering at handshake completion).
udp_burst_check() {
    local addr=$1 count=${2:-100} within=${3:-10} out rc=0 order=()
    [[ ${NB_BURST_ORDER:-strict} == any ]] && order=(--order-any 1)
    nb_next_port
    out="$LAB_DIR/udp.$NB_PORT.out"
    echo "--- udp burst: $count datagrams within ${within} ms to $addr:$NB_PORT"
    nb_start_listener "$out" ip netns exec "$NS_B" "$NBTRAFFIC" udp-recv --bind "$addr" --port "$NB_PORT" \
        --count "$count" --timeout-ms 10000 "${order[@]}"
    in_a "$NBTRAFFIC" udp-burst --dst "$addr" --port "$NB_PORT" --count "$count" \
        --within-ms "$within" || rc=$?
    nb_finish_listener "$out" || fail "udp burst to $addr did not arrive complete (order: ${NB_BURST_ORDER:-strict})"
    ((rc == 0)) || fail "udp burst sender failed (exit $rc)"
    pass "udp burst of $count within ${within} ms to $addr arrived complete (order: ${NB_BURST_ORDER:-strict})"
}

# tcp_connect_check ADDR [a-to-b|b-to-a]: from A, connect to ADDR (an address of B), or
# with b-to-a from B to ADDR (an address of A); the first SYN must get through (zero
# retransmissions).
tcp_connect_check() {
    local addr=$1 dir=${2:-a-to-b} out rc=0 srv_ns cli_ns
    case $dir in
        a-to-b) srv_ns=$NS_B cli_ns=$NS_A ;;
        b-to-a) srv_ns=$NS_A cli_ns=$NS_B ;;
        *) fail "tcp_connect_check: direction must be a-to-b or b-to-a, not '$dir'" ;;
    esac
    nb_next_port
    out="$LAB_DIR/tcp.$NB_PORT.out"
    echo "--- tcp connect ($dir) to $addr:$NB_PORT"
    nb_start_listener "$out" ip netns exec "$srv_ns" "$NBTRAFFIC" tcp-listen --bind "$addr" --port "$NB_PORT" \
        --count 1 --timeout-ms 15000
    ip netns exec "$cli_ns" "$NBTRAFFIC" tcp-connect --dst "$addr" --port "$NB_PORT" --timeout-ms 10000 || rc=$?
    nb_finish_listener "$out" || true
    ((rc == 0)) || fail "tcp connect ($dir) to $addr failed or needed retransmissions"
    pass "tcp connect ($dir) to $addr with zero retransmissions"
}

# ping_check ADDR [a-to-b|b-to-a]: one echo request from A (or, with b-to-a, from B),
# answered within 5 s, and nothing on stderr.
ping_check() {
    local addr=$1 dir=${2:-a-to-b} err="$LAB_DIR/ping.err" rc=0 ns
    case $dir in
        a-to-b) ns=$NS_A ;;
        b-to-a) ns=$NS_B ;;
        *) fail "ping_check: direction must be a-to-b or b-to-a, not '$dir'" ;;
    esac
    echo "--- ping -c 1 -W 5 $addr ($dir)"
    ip netns exec "$ns" ping -c 1 -W 5 "$addr" 2>"$err" || rc=$?
    if ((rc != 0)) || [[ -s $err ]]; then
        cat "$err"
        fail "single ping ($dir) to $addr (exit $rc, stderr above)"
    fi
    pass "first ping ($dir) to $addr answered"
}

# nb_start_trace FILE [a|b]: `nbagent trace peers --json` of side A's agent (or B's) in
# the background, one JSON event per line into FILE (its stderr into FILE.err), its pid in
# NB_TRACE_PID; returns once the agent has subscribed it, so every later event is in FILE.
nb_start_trace() {
    local out=$1 side=${2:-a} err="$1.err" ns dev run_dir
    _nb_side "$side"
    echo "--- trace peers --json of side $side's agent in the background, into $out"
    ip netns exec "$ns" "$NBAGENT" trace peers -i "$dev" --run-dir "$run_dir" --json \
        >"$out" 2>"$err" </dev/null &
    NB_TRACE_PID=$!
    NB_BG_PIDS+=("$NB_TRACE_PID")
    NB_SHOW_ON_FAILURE+=("$out" "$err")
    local deadline=$((SECONDS + 30))
    until grep -q "tracing peers" "$err"; do
        kill -0 "$NB_TRACE_PID" 2>/dev/null || fail "trace on side $side exited: $(cat "$err")"
        ((SECONDS < deadline)) || fail "trace on side $side not subscribed within 30 s"
        sleep 0.1
    done
    pass "trace on side $side subscribed ($out)"
}

# nb_trace_events FILE KEY JQ-FILTER: the events for peer KEY in trace FILE that match the
# filter, as a JSON array. A line that is not JSON fails (jq -s), except a last line the
# client is still writing: that is retried.
nb_trace_events() {
    local i out
    for ((i = 0; i < 20; i++)); do
        if out=$(jq -s -c --arg k "$2" "[.[] | select(.peer == \$k and ($3))]" "$1" 2>&1); then
            echo "$out"
            return 0
        fi
        sleep 0.05
    done
    fail "trace $1 is not JSON lines: $out"
}

# nb_peer_json KEY: that peer's object from side A's `status -d --json`.
# nb_clsact_filters: our programs' clsact filters on A's WireGuard device (both hooks);
# counted on this device only, unlike tcx links (bpftool 7.1 cannot tell their device).
nb_clsact_filters() {
    local dir n=0
    for dir in ingress egress; do
        n=$((n + $(in_a tc filter show dev "$WG_A" "$dir" 2>/dev/null | grep -c 'nb_\(egress\|ingress\)' || true)))
    done
    echo "$n"
}

nb_peer_json() {
    nb_cli status -d --json | jq -c -e --arg k "$1" '.peers[] | select(.public_key == $k)'
}

# Predicates on the agents' status, for wait_for. Side a unless the _on form names it.
# nb_peer_field_on SIDE(a|b) KEY FIELD: one field of one peer ("" when absent).
nb_peer_field_on() {
    local cli=nb_cli
    [[ $1 == b ]] && cli=nb_cli_b
    "$cli" status -d --json | jq -r --arg k "$2" --arg f "$3" '.peers[] | select(.public_key == $k) | .[$f] | values'
}
nb_peer_field() { nb_peer_field_on a "$@"; }              # KEY FIELD
nb_state_is_on() { [[ $(nb_peer_field_on "$1" "$2" state) == "$3" ]]; } # SIDE KEY STATE
nb_state_is() { nb_state_is_on a "$@"; }                   # KEY STATE
# nb_counts: side a's summary counts "IDLE CONNECTING CONNECTED".
nb_counts() { nb_cli status --json | jq -r '"\(.counts.idle) \(.counts.connecting) \(.counts.connected)"'; }
# nb_counts_are IDLE CONNECTING CONNECTED, cheaply: no -d, no jq (two process starts per
# poll would dominate a loop such as cycles.sh's).
nb_counts_are() {
    local s
    s=$(nb_cli status --json 2>/dev/null) || return 1
    [[ $s =~ \"counts\":\{([^}]*)\} ]] || return 1
    local c=",${BASH_REMATCH[1]},"
    [[ $c == *',"idle":'"$1"','* && $c == *',"connecting":'"$2"','* && $c == *',"connected":'"$3"','* ]]
}

# A jq definition to prefix to a filter: `ts_ms` turns an event's "ts" (RFC 3339 UTC with
# milliseconds, as the trace writes it) into milliseconds since the epoch.
# shellcheck disable=SC2016,SC2034 # jq's $c, not the shell's; used by the test scripts
NB_JQ_TS_MS='def ts_ms: (.ts | capture("^(?<s>[^.]+)\\.(?<ms>[0-9]{3})Z$")) as $c
    | (($c.s + "Z") | fromdateiso8601) * 1000 + ($c.ms | tonumber);'

# wg_go_pid_a: the pid of side A's wireguard-go (whoever started it); fails if none runs.
wg_go_pid_a() {
    local pid
    for pid in $(ip netns pids "$NS_A"); do
        [[ $(cat /proc/"$pid"/comm 2>/dev/null) == wireguard-go ]] || continue
        tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | grep -qw -- "$WG_A" || continue
        echo "$pid"
        return 0
    done
    return 1
}

# wg_agrees: side A's agent and its WireGuard tell the same story: an Idle peer has no
# endpoint (or its UDP listener's) and no handshake, a Connected one has an endpoint, and
# both list the same peers. Prints each disagreement.
wg_agrees() {
    local st eps hs bad
    st=$(nb_cli status -d --json | jq -r '.peers[] | "S \(.public_key) \(.state)"') || return 1
    eps=$(in_a wg show "$WG_A" endpoints | sed 's/^/E /') || return 1
    hs=$(in_a wg show "$WG_A" latest-handshakes | sed 's/^/H /') || return 1
    bad=$(awk '
        $1 == "S" { state[$2] = $3; next }
        $1 == "E" { ep[$2] = $3; next }
        $1 == "H" { hs[$2] = $3; next }
        END {
            for (k in state) {
                if (!(k in ep)) { print k, state[k], "is not in WireGuard"; continue }
                idle_ep = ep[k] == "(none)" || ep[k] ~ /^127\.1\./
                if (state[k] == "Idle" && (!idle_ep || hs[k] != 0))
                    print k, "Idle, but WireGuard has endpoint", ep[k], "handshake", hs[k]
                if (state[k] == "Connected" && idle_ep) print k, "Connected, but WireGuard has no endpoint"
            }
            for (k in ep) if (!(k in state)) print k, "is in WireGuard only"
        }' <(printf '%s\n%s\n%s\n' "$st" "$eps" "$hs"))
    [[ -z $bad ]] || {
        echo "agent and WireGuard disagree:"
        echo "$bad"
        return 1
    }
}

# nb_ms COMMAND...: runs COMMAND (output discarded) and prints how long it took in ms;
# fails as COMMAND does.
nb_ms() {
    local t0 rc=0
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1 || rc=$?
    echo $((($(date +%s%N) - t0) / 1000000))
    return "$rc"
}
