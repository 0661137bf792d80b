#!/usr/bin/env bash
# The kernel test matrix: boots one qemu VM per Debian kernel (run-vm.sh), runs the
# scenarios there against the host's already-built tree, runs them once more directly
# on the host (its kernel, wireguard-go), and prints the table:
#   run-matrix.sh [--tier ci|full] [--build DIR] [--kernels "5.10 6.1 6.12"] [--no-host]
#                 [--out FILE] [--stats FILE] [NAME:WG:ATTACH:COMMAND...]
# --tier ci (the default; .ci/run) runs each scenario on the rows SCENARIOS gives it;
# --tier full runs every scenario on every row (scripts/test.sh --full). Scenario specs on
# the command line (described in run-scenarios.sh) run on every row, whatever the tier.
# --out (default docs/kernel-matrix.md) receives the latest table as Markdown, with a
# column saying which results CI runs and which only --full does. --stats appends one
# "row ROW SECONDS" line per row and one "results PASSED FAILED SKIPPED" line, for
# scripts/test.sh's stage table and totals.
# A VM that dies without an exit code (panic) runs once more for the scenarios without
# a result; the table keeps a "vm | retried" row.
# Exit: 0 all passed (skip and n/a allowed), 1 a scenario failed, 2 a kernel could not
# be fetched or a VM did not boot or finish (which CI must treat as a failure).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# shellcheck source=vagrant/scenarios.sh
source "$ROOT/vagrant/scenarios.sh"

build="$ROOT/build"
kernels=$ALL_ROWS
host=1
tier=ci
out="$ROOT/docs/kernel-matrix.md"
stats_file=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --tier) tier=${2:?}; shift 2 ;;
        --build) build=${2:?}; shift 2 ;;
        --kernels) kernels=${2:?}; shift 2 ;;
        --no-host) host=0; shift ;;
        --out) out=${2:?}; shift 2 ;;
        --stats) stats_file=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "run-matrix.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ $tier == ci || $tier == full ]] || {
    echo "run-matrix.sh: --tier is ci or full, not '$tier'" >&2
    exit 2
}
vm_timeout=$([[ $tier == ci ]] && echo 1200 || echo 3000)

# Every spec this run knows, and the rows CI runs it on ("all", "6.1,6.12", or "none").
scenarios=()
declare -A ci_rows=()
if (($#)); then
    for spec in "$@"; do
        scenarios+=("$spec")
        ci_rows[$spec]=all
    done
else
    for entry in "${SCENARIOS[@]}"; do
        spec=${entry#* }
        scenarios+=("$spec")
        ci_rows[$spec]=${entry%% *}
        # A row name that is no kernel of the matrix would leave the scenario out of CI.
        for r in ${ci_rows[$spec]//,/ }; do
            [[ $r == all || " $ALL_ROWS " == *" $r "* ]] || {
                echo "run-matrix.sh: SCENARIOS gives '${spec%%:*}' the row '$r', not one of: all $ALL_ROWS" >&2
                exit 2
            }
        done
    done
    for spec in "${LONG_RUNS[@]}"; do
        scenarios+=("$spec")
        ci_rows[$spec]=none
    done
fi
# in_ci ROW SPEC: whether CI runs SPEC on ROW (a kernel series, or "host": the host row
# runs every scenario, in seconds, but no long run).
in_ci() {
    local rows=${ci_rows[$2]}
    [[ $rows != none ]] && [[ $rows == all || $1 == host || ",$rows," == *",$1,"* ]]
}
# row_specs ROW: the specs this tier runs on ROW, into the array todo.
row_specs() {
    local spec
    todo=()
    for spec in "${scenarios[@]}"; do
        if [[ $tier == full ]] || in_ci "$1" "$spec"; then todo+=("$spec"); fi
    done
}
build=$(cd "$build" 2>/dev/null && pwd) || {
    echo "run-matrix.sh: build directory missing (scripts/setup.sh builds build/)" >&2
    exit 2
}
[[ -x $build/tests/bpf_prog_test ]] || echo "run-matrix.sh: warning: $build/tests/bpf_prog_test is not built" >&2

step() { echo "==> matrix: $*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }'; }

work=$(mktemp -d /tmp/nbmatrix.XXXXXX)
trap 'rm -rf "$work"' EXIT
results="$work/results"
# The tree as tested: read now, since writing --out into the tree later makes it differ.
tested=$(tested_tree "$ROOT")
: >"$results"
timings=()
infra_failed=0
# "LABEL|WG|ATTACH|NAME" of every result CI runs: the table's CI column.
ci_marks="$work/ci"
: >"$ci_marks"

# mark_row ROW LABEL: notes which specs CI runs on ROW (results are labelled LABEL) and,
# in the CI tier, lists the others as run by --full only, with where CI runs them, in
# $work/full-only (appended to the results after the row's own, by end_row).
mark_row() {
    : >"$work/full-only"
    local spec name wg attach
    for spec in "${scenarios[@]}"; do
        IFS=: read -r name wg attach _ <<<"$spec"
        if in_ci "$1" "$spec"; then
            echo "$2|$wg|$attach|$name" >>"$ci_marks"
        elif [[ $tier == ci ]]; then
            local where=${ci_rows[$spec]}
            [[ $where == none ]] && where="no row (a long run)" || where="row $where"
            echo "MATRIX $2|$wg|$attach|$name|full only|0|CI runs it on $where; scripts/test.sh --full runs every row" >>"$work/full-only"
        fi
    done
}
end_row() { cat "$work/full-only" >>"$results"; }

# spec_done FILE SPEC: whether FILE has a result line for SPEC (NAME:WG:ATTACH:...).
spec_done() {
    local name wg attach
    IFS=: read -r name wg attach _ <<<"$2"
    grep -qF "|$wg|$attach|$name|" "$1" 2>/dev/null
}

# systemd_vm ROW SPEC: one scenario in a VM of its own with systemd as PID 1.
systemd_vm() {
    local scratch="$work/vm-$1-systemd-${2%%:*}" rc name wg attach
    mkdir -p "$scratch"
    step "kernel $1: ${2%%:*} in a VM booted with systemd as PID 1"
    "$HERE/run-vm.sh" --init systemd --timeout "${NB_MATRIX_VM_TIMEOUT:-$vm_timeout}" --scratch "$scratch" "$1" -- \
        bash vagrant/qemu/run-scenarios.sh --kernel "$1" --build "$build" --results /nbvm/results "$2" 2>&1 |
        tee "$work/console-$1-systemd.log"
    rc=${PIPESTATUS[0]}
    [[ -s $scratch/results ]] && cat "$scratch/results" >>"$results"
    spec_done "$scratch/results" "$2" && return
    ((rc == 124 || rc == 125)) && infra_failed=1
    IFS=: read -r name wg attach _ <<<"$2"
    echo "MATRIX $1|$wg|$attach|$name|fail|0|no result: run-vm.sh --init systemd exited $rc (console in the log)" >>"$results"
}

matrix_start=$(now)
for k in $kernels; do
    step "kernel $k ($tier tier): fetching and booting"
    row_specs "$k"
    mark_row "$k" "$k"
    t0=$(now)
    # The scenarios that need systemd as PID 1 get VMs of their own, after this row's.
    systemd_specs=()
    rest=()
    for spec in "${todo[@]}"; do
        IFS=: read -r _ _ _ cmd <<<"$spec"
        if [[ $cmd == "systemd "* ]]; then systemd_specs+=("$spec"); else rest+=("$spec"); fi
    done
    todo=("${rest[@]}")
    rc=0
    for attempt in 1 2; do
        ((${#todo[@]})) || break
        scratch="$work/vm-$k-$attempt"
        mkdir -p "$scratch"
        rc=0
        # The guest writes its results into the scratch share; the console is kept for the
        # boot time and for the log.
        # One VM runs every scenario of its row: in the full tier 5.10 alone takes ~20 min
        # under TCG, more on a busy machine; a CI-tier row takes about 5 min, and a hung
        # one must not eat CI's budget (NB_MATRIX_VM_TIMEOUT, seconds).
        "$HERE/run-vm.sh" --timeout "${NB_MATRIX_VM_TIMEOUT:-$vm_timeout}" --scratch "$scratch" "$k" -- \
            bash vagrant/qemu/run-scenarios.sh --kernel "$k" --build "$build" --results /nbvm/results \
            "${todo[@]}" 2>&1 | tee "$work/console-$k-$attempt.log"
        rc=${PIPESTATUS[0]}
        [[ -s $scratch/results ]] && cat "$scratch/results" >>"$results"
        ((rc == 125 && attempt == 1)) || break
        # The guest died without an exit code. Under multi-threaded TCG a kernel can Oops
        # on its own freshly patched code (run-vm.sh): not something the scenarios did, so
        # the ones without a result run once more in a new VM; a second death is a failure.
        # The row stays in the table with the console's first oops line.
        left=()
        for spec in "${todo[@]}"; do
            spec_done "$scratch/results" "$spec" || left+=("$spec")
        done
        oops=$(grep -a -m1 -E 'Oops|BUG:|Kernel panic|general protection|invalid opcode' \
            "$work/console-$k-$attempt.log" | tr -d '\r|' | cut -c1-160)
        echo "MATRIX $k|-|-|vm|retried|$(elapsed "$t0")|the VM died during ${left[0]%%:*} (${oops:-no oops line on the console}); ${#left[@]} scenarios without a result ran in a new VM" >>"$results"
        step "kernel $k: the VM died without an exit code; ${#left[@]} scenarios run again in a new VM"
        ((${#left[@]})) || { rc=0; break; }
        todo=("${left[@]}")
    done
    for spec in "${systemd_specs[@]}"; do systemd_vm "$k" "$spec"; done
    end_row
    wall=$(elapsed "$t0")
    console=$(ls "$work/console-$k-"*.log 2>/dev/null | head -n 1)
    boot=$(sed -n 's/.*nbvm: root ready after \([0-9.]*\) s.*/\1/p' "$console" 2>/dev/null | head -n 1)
    release=$(sed -n 's/.*nbvm: kernel \([^ ]*\) up after.*/\1/p' "$console" 2>/dev/null | head -n 1)
    timings+=("$k|${release:-?}|${boot:-?}|$wall")
    # 124: hung past the timeout; 125: no exit code (fetch, boot or panic), twice.
    if ((rc == 124 || rc == 125)); then
        infra_failed=1
        running=""
        for spec in "${todo[@]}"; do
            spec_done "$scratch/results" "$spec" || { running=${spec%%:*}; break; }
        done
        echo "MATRIX $k|-|-|vm|fail|$wall|run-vm.sh exit $rc (fetch, boot, hang or panic; console above)${running:+ during $running}" >>"$results"
    else
        # The guest finished, yet a scenario has no result (run-scenarios.sh refused its
        # arguments, or stopped early): that is a failure, never a silent pass.
        for spec in "${todo[@]}"; do
            spec_done "$scratch/results" "$spec" && continue
            IFS=: read -r name wg attach _ <<<"$spec"
            echo "MATRIX $k|$wg|$attach|$name|fail|0|no result: the guest's run-scenarios.sh exited $rc (console in the log)" >>"$results"
        done
    fi
done

if ((host)); then
    step "host kernel $(uname -r)"
    t0=$(now)
    row_specs host
    mark_row host "host $(uname -r)"
    (cd "$ROOT" && bash vagrant/qemu/run-scenarios.sh --kernel "host $(uname -r)" --build "$build" \
        --results "$results" "${todo[@]}")
    end_row
    timings+=("host|$(uname -r)|-|$(elapsed "$t0")")
fi
total=$(elapsed "$matrix_start")
if [[ -n $stats_file ]]; then
    for t in "${timings[@]}"; do
        IFS='|' read -r a _ _ d <<<"$t"
        echo "row ${a%% *} $d" >>"$stats_file"
    done
    sed -n 's/^MATRIX //p' "$results" | awk -F'|' '$4 != "vm" && $5 == "pass" { p++ }
        $5 == "fail" { f++ } $5 == "skip" { s++ }
        END { print "results", p + 0, f + 0, s + 0 }' >>"$stats_file"
fi

# The table, from the result lines: kernel|wg|attach|scenario|result|seconds|note.
table() {
    echo "| kernel | WireGuard | attach | scenario | in CI | result | time (s) | note |"
    echo "|---|---|---|---|---|---|---|---|"
    sed -n 's/^MATRIX //p' "$results" | awk -F'|' -v marks="$ci_marks" '
        BEGIN { while ((getline line < marks) > 0) ci[line] = 1 }
        { wg = $2 == "userspace" ? "wireguard-go" : $2
          key = $1 "|" $2 "|" $3 "|" $4
          inci = $4 == "vm" ? "-" : (key in ci ? "yes" : "no (--full)")
          printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, wg, $3, $4, inci, ($5 == "fail" ? "**FAIL**" : $5), $6, $7 }'
    echo
    echo "| row | kernel release | boot to command (s) | wall, all scenarios incl. fetch and boot (s) |"
    echo "|---|---|---|---|"
    local t
    for t in "${timings[@]}"; do
        IFS='|' read -r a b c d <<<"$t"
        echo "| $a | $b | $c | $d |"
    done
}

failed=$(sed -n 's/^MATRIX //p' "$results" | awk -F'|' '$5 == "fail"' | wc -l)
echo
step "kernel matrix (total ${total} s; $failed failed)"
table

if [[ -n $out ]]; then
    mkdir -p "$(dirname "$out")"
    {
        echo "# Kernel matrix"
        echo
        echo "Written by \`vagrant/qemu/run-matrix.sh --tier $tier\` (see vagrant/README.md) on $(date -u +%Y-%m-%dT%H:%MZ):"
        echo "Debian kernels under qemu TCG (2 vCPUs), plus the host kernel; build: \`${build#"$ROOT"/}\`,"
        echo "commit $tested."
        echo "Total ${total} s. \`n/a\`: the kernel lacks the feature (tcx before 6.6);"
        echo "\`skip\`: the test skipped itself (kernel WireGuard on a host without the module)."
        echo "\`in CI\`: whether .ci/run (the CI tier) runs that scenario on that row; \`full only\`:"
        echo "not run by this CI-tier run (\`scripts/test.sh --full\` runs it). The rule for which"
        echo "row CI runs a scenario on is written beside the list, in run-matrix.sh."
        echo
        table
    } >"$out"
    step "table written to $out"
fi

# A scenario that failed is a real failure wherever it runs; a VM that could not run
# anything (exit 2) is one only where the infrastructure is promised (CI).
scenario_failed=$(sed -n 's/^MATRIX //p' "$results" | awk -F'|' '$5 == "fail" && $4 != "vm"' | wc -l)
((scenario_failed == 0)) || exit 1
((infra_failed == 0)) || exit 2
exit 0
