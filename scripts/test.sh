#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root), in two tiers:
#   scripts/test.sh          the CI tier, what .ci/run runs (about 23 min here with CI's
#                            warm ccache, 43 min with an empty one); see docs/testing.md
#   scripts/test.sh --full   the same builds and ctest, then the full kernel matrix: every
#                            scenario on every kernel row, and the long runs (~1 h 15 min)
# Stages, each timed:
#   setup          packages, bpffs, ccache (scripts/setup.sh --no-build)
#   build          build/: GCC, RelWithDebInfo; the tested tree, also the matrix's
#   build-asan     build-asan/: clang 14, ASan+UBSan: the agent, unit tests, test tools
#                  and fuzz targets (no benchmarks: they measure speed, which sanitizers
#                  change)
#   build-deb      build-deb/: the Debian package (scripts/package.sh --strict), its
#                  lintian check and an install, remove and purge in a chroot
#   ctest build, ctest build-asan, and one stage per kernel matrix row.
# Warnings are errors in every build here (scripts/build.sh). Under CI=true a test that
# would skip for lack of privileges fails instead. Exit non-zero if anything failed. The
# last lines are the ctest summaries, the table of stage times and one line
# "total: N passed, N failed, N skipped".
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tier=ci
case ${1:-} in
    "") ;;
    --full) tier=full ;;
    -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "usage: scripts/test.sh [--full]" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || {
    echo "scripts/test.sh: run as root: the tests build network namespaces, load BPF and boot VMs" >&2
    exit 1
}
JOBS=$(nproc)
LOG_DIR="$ROOT/build-logs"
mkdir -p "$LOG_DIR"
step() { echo "==> test: $*"; }

if [[ ${CI:-} == true ]]; then
    export NB_REQUIRE_PRIVILEGED=1
fi

summaries=()
stages=() # "NAME|SECONDS"
total_passed=0
total_failed=0
total_skipped=0
status=0
suite_start=$SECONDS

# timed NAME COMMAND...: runs COMMAND, adds its wall time to the stage table.
timed() {
    local name=$1 t0=$SECONDS rc=0
    shift
    "$@" || rc=$?
    stages+=("$name|$((SECONDS - t0))")
    return "$rc"
}

print_stages() {
    echo
    echo "==> stage times (s)"
    local s name secs
    for s in "${stages[@]}"; do
        IFS='|' read -r name secs <<<"$s"
        printf '  %-28s %6d\n' "$name" "$secs"
    done
    printf '  %-28s %6d\n' "all" "$((SECONDS - suite_start))"
}

finish() {
    echo
    echo "==> test summary ($tier tier)"
    local s
    for s in "${summaries[@]}"; do echo "$s"; done
    print_stages
    echo "total: $total_passed passed, $total_failed failed, $total_skipped skipped"
    exit "$status"
}

# fail_stage WHAT: a stage that could not complete; nothing after it can run.
fail_stage() {
    summaries+=("FAILED: $1 (log in $LOG_DIR)")
    status=1
    total_failed=$((total_failed + 1))
    finish
}

step "setup (packages, bpffs)"
timed setup bash "$ROOT/scripts/setup.sh" --no-build || fail_stage "setup.sh"

step "build/ (GCC, RelWithDebInfo)"
timed "build build/" bash "$ROOT/scripts/build.sh" "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ||
    fail_stage "the build of build/"

# clang 14: it built this tree with the sanitizers in half GCC's time when it was chosen
# (4 min against 8.5 min here), and CI then compiles everything with both compilers. It
# also builds the libFuzzer targets (NB_FUZZ, tests/fuzz), which its ctest runs for a few
# seconds each.
step "build-asan/ (clang 14, ASan+UBSan, fuzz targets; no benchmarks)"
timed "build build-asan/" bash "$ROOT/scripts/build.sh" "$ROOT/build-asan" \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNB_SANITIZE=ON -DNB_BUILD_BENCH=OFF -DNB_FUZZ=ON ||
    fail_stage "the sanitizer build"

# The Debian package (scripts/package.sh --strict): dpkg-buildpackage with Debian's
# flags, here with -Werror and CMake's Release -O3 after them (a warning the compiler
# finds only there fails CI, never a packager's build); lintian without errors; install,
# remove and purge in a Debian 12 chroot.
step "build-deb/ (dpkg-buildpackage, lintian, a Debian 12 chroot)"
timed "package build-deb/" bash "$ROOT/scripts/package.sh" --strict --out "$ROOT/build-deb" \
    >"$LOG_DIR/package.log" 2>&1 || {
    tail -n 40 "$LOG_DIR/package.log"
    fail_stage "the Debian package (scripts/package.sh)"
}
grep '^package.sh: PASS' "$LOG_DIR/package.log" | sed 's/^/  /'
summaries+=("build-deb: $(grep -c '^package.sh: PASS' "$LOG_DIR/package.log") package checks passed")

# run_ctest NAME DIR: runs the suite, adds its counts to the totals.
run_ctest() {
    local name=$1 dir=$2 log="$LOG_DIR/ctest-$1.log" rc=0
    step "ctest in $dir"
    # One slot more than cores: groups and stale_sessions hold one while they wait out
    # their timers (tests/integration/tests.cmake).
    (cd "$dir" && ctest --output-on-failure -j "$((JOBS + 1))") 2>&1 | tee "$log"
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
    # The names too: CI keeps only the end of the output, and ctest lists them earlier.
    local line names='/^The following tests FAILED:/,/^Errors while running CTest/'
    while IFS= read -r line; do
        summaries+=("  $name FAILED: $line")
    done < <(sed -nE "${names}s/^[[:space:]]+([0-9]+ - )/\\1/p" "$log")
}

timed "ctest build/" run_ctest build "$ROOT/build"

# Sanitizers stop at the first error and leaks count (LeakSanitizer works as root here).
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
timed "ctest build-asan/" run_ctest build-asan "$ROOT/build-asan"
unset ASAN_OPTIONS UBSAN_OPTIONS

# Last: the kernel matrix (Debian 5.10, 6.1 and 6.12 under qemu, and the host, against
# build/). Its exit 2 (no kernel fetched, a VM that did not boot or finish) fails only
# under CI; elsewhere NB_VM_MATRIX=0 skips it.
matrix="$ROOT/vagrant/qemu/run-matrix.sh"
if [[ ${NB_VM_MATRIX:-} == 0 && ${CI:-} != true ]]; then
    summaries+=("kernel matrix: skipped (NB_VM_MATRIX=0)")
else
    step "kernel matrix, $tier tier ($matrix)"
    stats="$LOG_DIR/matrix-stats"
    : >"$stats"
    rc=0
    "$matrix" --tier "$tier" --stats "$stats" 2>&1 | tee "$LOG_DIR/kernel-matrix.log"
    rc=${PIPESTATUS[0]}
    while read -r kind a b c; do
        case $kind in
            row) stages+=("matrix row $a|$b") ;;
            # Scenarios count beside ctest's tests; a VM that failed counts as one failure.
            results)
                total_passed=$((total_passed + a))
                total_failed=$((total_failed + b))
                total_skipped=$((total_skipped + c))
                ;;
        esac
    done <"$stats"
    case $rc in
        0) summaries+=("kernel matrix ($tier tier): passed (docs/kernel-matrix.md)") ;;
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

finish
