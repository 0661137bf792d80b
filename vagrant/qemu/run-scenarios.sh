#!/usr/bin/env bash
# Runs matrix scenarios on the running kernel (inside a matrix VM, or on the host) from
# the repository root, and records one result line per scenario:
#   run-scenarios.sh --kernel LABEL --build DIR --results FILE SPEC...
# SPEC is NAME:WG:ATTACH:COMMAND. WG (userspace|kernel) and ATTACH (clsact|tcx) reach the
# integration tests as NB_TEST_WG / NB_TEST_ATTACH (tests/integration/lib.sh); "-" means
# the scenario has no such axis. COMMAND runs under bash -c with BUILD, NBTRAFFIC and
# NBAGENT set as ctest sets them. Result lines (appended to FILE, and printed):
#   MATRIX LABEL|WG|ATTACH|NAME|pass|fail|skip|n/a|SECONDS|NOTE
# tcx scenarios are n/a below kernel 6.6 (no tcx there). A COMMAND starting with
# "min-kernel=X.Y " is n/a below that kernel (scenarios too slow to run on every row under
# emulation). Exit 1 if any scenario failed.
# Two more prefixes let a row overlap what mostly waits out timers with what needs the
# CPU (under emulation every scenario costs minutes): "background " starts the scenario
# and goes on with the next (its output is printed when it ends); "alone " first waits
# for every background scenario, for tests that count BPF objects machine-wide.
# "systemd " is n/a unless systemd is PID 1 (run-matrix.sh gives such a scenario a VM
# booted with it).
set -uo pipefail

kernel="" build="" results=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --kernel) kernel=${2:?}; shift 2 ;;
        --build) build=${2:?}; shift 2 ;;
        --results) results=${2:?}; shift 2 ;;
        *) break ;;
    esac
done
if [[ -z $kernel || -z $build || -z $results || $# -eq 0 ]]; then
    echo "usage: run-scenarios.sh --kernel LABEL --build DIR --results FILE NAME:WG:ATTACH:COMMAND..." >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 2
BUILD=$(cd "$build" && pwd) || exit 2
export BUILD NBTRAFFIC="$BUILD/tests/nbtraffic" NB_NO_BPF="$BUILD/tests/no_bpf"
[[ -x $BUILD/cli/nbagent ]] && export NBAGENT="$BUILD/cli/nbagent"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# kernel_at_least MAJOR MINOR
kernel_at_least() {
    local major minor
    IFS=. read -r major minor _ <<<"$(uname -r)"
    ((major > $1 || (major == $1 && minor >= $2)))
}
tcx_possible() { kernel_at_least 6 6; }

record() {
    local line="MATRIX $kernel|$1|$2|$3|$4|$5|${6:-}"
    echo "$line"
    echo "$line" >>"$results"
}

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
bg_pids=() bg_logs=()

# run_one NAME WG ATTACH COMMAND LOG: runs the scenario, records its result; exit 1 if
# it failed.
run_one() {
    local name=$1 wg=$2 attach=$3 cmd=$4 log=$5 env_args=() start rc secs note
    echo "=== scenario $name (wg $wg, attach $attach) on $(uname -r): $cmd"
    [[ $wg != - ]] && env_args+=("NB_TEST_WG=$wg")
    [[ $attach != - ]] && env_args+=("NB_TEST_ATTACH=$attach")
    start=$(date +%s.%N)
    env "${env_args[@]}" bash -c "$cmd" </dev/null 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    # The note: the test's own reason (SKIP:/FAIL: lines of lib.sh and smoke.sh, failed
    # gtest cases), so the table says what broke.
    note=$(grep -E '^(SKIP: |FAIL: |SMOKE .* FAIL|\[  FAILED  \] [A-Za-z])' "$log" | awk '!seen[$0]++' | head -n 3 | tr '\n|' '; ' | cut -c1-300)
    case $rc in
        0) record "$wg" "$attach" "$name" pass "$secs" ;;
        77) record "$wg" "$attach" "$name" skip "$secs" "$note" ;;
        *)
            record "$wg" "$attach" "$name" fail "$secs" "exit $rc${note:+: $note}"
            return 1
            ;;
    esac
}

# Waits for the background scenarios, printing each one's output as it is collected.
join_background() {
    local i
    for i in "${!bg_pids[@]}"; do
        wait "${bg_pids[$i]}" || status=1
        echo "=== output of background scenario ${bg_logs[$i]##*/}"
        cat "${bg_logs[$i]}.out"
    done
    bg_pids=() bg_logs=()
}

n=0
for spec in "$@"; do
    n=$((n + 1))
    IFS=: read -r name wg attach cmd <<<"$spec"
    if [[ -z $name || -z $wg || -z $attach || -z $cmd ]]; then
        record "${wg:--}" "${attach:--}" "${name:-?}" fail 0 "bad scenario spec '$spec'"
        status=1
        continue
    fi
    background=0
    while :; do
        if [[ $cmd =~ ^min-kernel=([0-9]+)\.([0-9]+)[[:space:]]+(.*)$ ]]; then
            cmd=${BASH_REMATCH[3]}
            if ! kernel_at_least "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"; then
                record "$wg" "$attach" "$name" n/a 0 "runs on kernels >= ${BASH_REMATCH[1]}.${BASH_REMATCH[2]} only (time under emulation)"
                continue 2
            fi
        elif [[ $cmd =~ ^background[[:space:]]+(.*)$ ]]; then
            cmd=${BASH_REMATCH[1]}
            background=1
        elif [[ $cmd =~ ^systemd[[:space:]]+(.*)$ ]]; then
            cmd=${BASH_REMATCH[1]}
            if [[ $(cat /proc/1/comm 2>/dev/null) != systemd ]]; then
                record "$wg" "$attach" "$name" n/a 0 "needs systemd as PID 1 (run-matrix.sh boots a VM so)"
                continue 2
            fi
        elif [[ $cmd =~ ^alone[[:space:]]+(.*)$ ]]; then
            cmd=${BASH_REMATCH[1]}
            join_background
        else
            break
        fi
    done
    if [[ $attach == tcx ]] && ! tcx_possible; then
        record "$wg" "$attach" "$name" n/a 0 "kernel $(uname -r) < 6.6 has no tcx"
        continue
    fi
    log="$logs/$n-$name"
    if ((background)); then
        echo "=== scenario $name (wg $wg, attach $attach) starts in the background"
        run_one "$name" "$wg" "$attach" "$cmd" "$log" >"$log.out" 2>&1 &
        bg_pids+=($!) bg_logs+=("$log")
    else
        run_one "$name" "$wg" "$attach" "$cmd" "$log" || status=1
    fi
done
join_background
exit "$status"
