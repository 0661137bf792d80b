#!/usr/bin/env bash
# The kernel test matrix: boots one qemu VM per Debian kernel (run-vm.sh), runs the
# scenarios there against the host's already-built tree, runs them once more directly
# on the host (its kernel, wireguard-go), and prints the table:
#   run-matrix.sh [--build DIR] [--kernels "5.10 6.1 6.12"] [--no-host] [--out FILE]
#                 [NAME:WG:ATTACH:COMMAND...]
# Scenario specs are described in run-scenarios.sh; without any, DEFAULT_SCENARIOS below.
# --out (default docs/kernel-matrix.md) receives the latest table as Markdown.
# A VM that dies without an exit code (panic) runs once more for the scenarios without
# a result; the table keeps a "vm | retried" row.
# Exit: 0 all passed (skip and n/a allowed), 1 a scenario failed, 2 a kernel could not
# be fetched or a VM did not boot or finish (which CI must treat as a failure).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

# One line per scenario (NAME:WG:ATTACH:COMMAND, see run-scenarios.sh).
DEFAULT_SCENARIOS=(
    'smoke:-:-:bash vagrant/qemu/smoke.sh "$BUILD"'
    'bpf_prog_test:-:-:"$BUILD"/tests/bpf_prog_test'
    'lab_eager:userspace:-:bash tests/integration/lab_eager.sh'
    'lab_kernel_eager:kernel:-:bash tests/integration/lab_kernel_eager.sh'
    'lazy_e2e:userspace:clsact:bash tests/integration/lazy_e2e.sh'
    'lazy_e2e:userspace:tcx:bash tests/integration/lazy_e2e.sh'
    'lazy_e2e:kernel:clsact:bash tests/integration/lazy_e2e.sh'
    'lazy_e2e:kernel:tcx:bash tests/integration/lazy_e2e.sh'
    'crash_recovery:kernel:-:bash tests/integration/crash_recovery.sh'
    'tc_coexist:kernel:-:bash tests/integration/tc_coexist.sh'
    'bad_input:kernel:-:bash tests/integration/bad_input.sh'
    'eager_mode:kernel:-:bash tests/integration/eager_mode.sh'
    'netlink_kernel_test:kernel:-:"$BUILD"/tests/netlink_kernel_test'
    'apply:kernel:-:bash tests/integration/apply.sh'
    'apply_100k:kernel:-:min-kernel=6.12 NB_APPLY_PEERS=100000 bash tests/integration/apply.sh'
    'two_agents:kernel:-:bash tests/integration/two_agents.sh'
    'cycles:kernel:-:NB_CYCLES=150 NB_CYCLES_WARMUP=50 bash tests/integration/cycles.sh'
    'failures:kernel:-:bash tests/integration/failures.sh'
    'groups:kernel:-:bash tests/integration/groups.sh'
    'lazy_e2e_no_bpf:kernel:-:bash tests/integration/lazy_e2e_no_bpf.sh'
    'lazy_e2e_udp:kernel:-:bash tests/integration/lazy_e2e_udp.sh'
    'overrun:kernel:-:bash tests/integration/overrun.sh'
)

build="$ROOT/build"
kernels="5.10 6.1 6.12"
host=1
out="$ROOT/docs/kernel-matrix.md"
while [[ $# -gt 0 ]]; do
    case $1 in
        --build) build=${2:?}; shift 2 ;;
        --kernels) kernels=${2:?}; shift 2 ;;
        --no-host) host=0; shift ;;
        --out) out=${2:?}; shift 2 ;;
        -h | --help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "run-matrix.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
scenarios=("$@")
((${#scenarios[@]})) || scenarios=("${DEFAULT_SCENARIOS[@]}")
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
tested="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
: >"$results"
timings=()
infra_failed=0

# spec_done FILE SPEC: whether FILE has a result line for SPEC (NAME:WG:ATTACH:...).
spec_done() {
    local name wg attach
    IFS=: read -r name wg attach _ <<<"$2"
    grep -qF "|$wg|$attach|$name|" "$1" 2>/dev/null
}

matrix_start=$(now)
for k in $kernels; do
    step "kernel $k: fetching and booting"
    todo=("${scenarios[@]}")
    t0=$(now)
    for attempt in 1 2; do
        scratch="$work/vm-$k-$attempt"
        mkdir -p "$scratch"
        rc=0
        # The guest writes its results into the scratch share; the console is kept for the
        # boot time and for the log.
        # One VM runs every scenario of its kernel: 5.10 alone takes ~20 min under TCG, more
        # on a busy machine (NB_MATRIX_VM_TIMEOUT, seconds).
        "$HERE/run-vm.sh" --timeout "${NB_MATRIX_VM_TIMEOUT:-3000}" --scratch "$scratch" "$k" -- \
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
    wall=$(elapsed "$t0")
    boot=$(sed -n 's/.*nbvm: root ready after \([0-9.]*\) s.*/\1/p' "$work/console-$k-1.log" | tail -n 1)
    release=$(sed -n 's/.*nbvm: kernel \([^ ]*\) up after.*/\1/p' "$work/console-$k-1.log" | tail -n 1)
    timings+=("$k|${release:-?}|${boot:-?}|$wall")
    # 124: hung past the timeout; 125: no exit code (fetch, boot or panic), twice.
    if ((rc == 124 || rc == 125)); then
        infra_failed=1
        running=""
        for spec in "${todo[@]}"; do
            spec_done "$scratch/results" "$spec" || { running=${spec%%:*}; break; }
        done
        echo "MATRIX $k|-|-|vm|fail|$wall|run-vm.sh exit $rc (fetch, boot, hang or panic; console above)${running:+ during $running}" >>"$results"
    fi
done

if ((host)); then
    step "host kernel $(uname -r)"
    t0=$(now)
    (cd "$ROOT" && bash vagrant/qemu/run-scenarios.sh --kernel "host $(uname -r)" --build "$build" \
        --results "$results" "${scenarios[@]}")
    timings+=("host|$(uname -r)|-|$(elapsed "$t0")")
fi
total=$(elapsed "$matrix_start")

# The table, from the result lines: kernel|wg|attach|scenario|result|seconds|note.
table() {
    echo "| kernel | WireGuard | attach | scenario | result | time (s) | note |"
    echo "|---|---|---|---|---|---|---|"
    sed -n 's/^MATRIX //p' "$results" | awk -F'|' '
        { wg = $2 == "userspace" ? "wireguard-go" : $2
          printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, wg, $3, $4, ($5 == "fail" ? "**FAIL**" : $5), $6, $7 }'
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
        echo "Written by \`vagrant/qemu/run-matrix.sh\` (see vagrant/README.md) on $(date -u +%Y-%m-%dT%H:%MZ):"
        echo "Debian kernels under qemu TCG (2 vCPUs), plus the host kernel; build: \`${build#"$ROOT"/}\`,"
        echo "commit $tested."
        echo "Total ${total} s. \`n/a\`: the kernel lacks the feature (tcx before 6.6);"
        echo "\`skip\`: the test skipped itself (kernel WireGuard on a host without the module)."
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
