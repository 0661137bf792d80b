#!/usr/bin/env bash
# Builds and runs every test twice: build/ (RelWithDebInfo) and build-asan/ (ASan+UBSan).
# Privileged tests run for real as root; under CI=true a test that would skip fails.
# Exits non-zero if any build or test failed; the last lines are the ctest summaries
# and one "total: N passed, N failed, N skipped" line.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JOBS=2
LOG_DIR="$ROOT/build-logs"
mkdir -p "$LOG_DIR"
step() { echo "==> test: $*"; }

if [[ ${CI:-} == true ]]; then
    export NB_REQUIRE_PRIVILEGED=1
fi

step "setup (packages, bpffs, build/)"
if ! bash "$ROOT/scripts/setup.sh"; then
    echo "FAIL: setup.sh or the build of build/ failed"
    exit 1
fi

step "configuring and building build-asan/"
if ! cmake -S "$ROOT" -B "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_SANITIZE=ON ||
    ! cmake --build "$ROOT/build-asan" -j "$JOBS"; then
    echo "FAIL: the sanitizer build failed"
    exit 1
fi

summaries=()
total_passed=0
total_failed=0
total_skipped=0
status=0

# run_ctest NAME DIR: runs the suite, adds its counts to the totals.
run_ctest() {
    local name=$1 dir=$2 log="$LOG_DIR/ctest-$1.log" rc=0
    step "ctest in $dir"
    (cd "$dir" && ctest --output-on-failure -j "$JOBS") 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local summary total passed skipped failed
    summary=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
    if [[ -z $summary ]]; then
        summaries+=("$name: ctest printed no summary (exit $rc)")
        status=1
        total_failed=$((total_failed + 1))
        return
    fi
    summaries+=("$name: $summary")
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
    passed=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .* Passed +[0-9.]+ sec' "$log")
    skipped=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#[0-9]+: .*\*\*\*Skipped' "$log")
    failed=$((total - passed - skipped))
    total_passed=$((total_passed + passed))
    total_skipped=$((total_skipped + skipped))
    total_failed=$((total_failed + failed))
    if ((rc != 0 || failed != 0)); then status=1; fi
}

run_ctest build "$ROOT/build"

# Sanitizers stop at the first error and leaks count (LeakSanitizer works as root here).
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_ctest build-asan "$ROOT/build-asan"

# Last: the kernel matrix (Debian 5.10, 6.1, 6.12 under qemu, against build/; ~10 min).
# Its exit 2 (no kernel fetched, a VM that did not boot or finish) fails only under CI;
# elsewhere NB_VM_MATRIX=0 skips it.
matrix="$ROOT/vagrant/qemu/run-matrix.sh"
if [[ -x $matrix ]] && command -v qemu-system-x86_64 >/dev/null; then
    if [[ ${NB_VM_MATRIX:-} == 0 && ${CI:-} != true ]]; then
        summaries+=("kernel matrix: skipped (NB_VM_MATRIX=0)")
    else
        step "kernel matrix ($matrix)"
        rc=0
        "$matrix" 2>&1 | tee "$LOG_DIR/kernel-matrix.log"
        rc=${PIPESTATUS[0]}
        case $rc in
            0) summaries+=("kernel matrix: passed (docs/kernel-matrix.md)") ;;
            2) if [[ ${CI:-} == true ]]; then
                   summaries+=("kernel matrix: FAILED to fetch a kernel or run a VM (see $LOG_DIR/kernel-matrix.log)")
                   status=1
               else
                   summaries+=("kernel matrix: could not fetch a kernel or run a VM (not CI: warning only)")
               fi ;;
            *) summaries+=("kernel matrix: FAILED (docs/kernel-matrix.md, $LOG_DIR/kernel-matrix.log)")
               status=1 ;;
        esac
    fi
fi

echo
echo "==> test summary"
for s in "${summaries[@]}"; do echo "$s"; done
echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit "$status"
