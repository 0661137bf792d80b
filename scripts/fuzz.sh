#!/usr/bin/env bash
# libFuzzer runs of the fuzz targets in tests/fuzz (docs/reliability.md):
#   scripts/fuzz.sh TARGET|all [--time SECONDS] [--parallel] [--build DIR]
#       runs each target for SECONDS (default 1800: the long run) on a copy of its corpus
#       tests/fuzz/corpus/TARGET, then prints per target: execs, execs/s, cov and ft
#       (libFuzzer's final coverage and features), corpus size, seconds and crashes;
#       --parallel runs the targets at the same time at nice 19, sharing the cores
#   scripts/fuzz.sh seeds [--build DIR]
#       rewrites tests/fuzz/corpus/ from the unit tests' inputs: runs the tests that call
#       test::fuzz_seed with NB_FUZZ_SEED_DIR set, then merges what they wrote with the
#       corpus (libFuzzer -merge=1 keeps the smallest set with the same coverage)
# DIR is a build with NB_FUZZ=ON (clang), by default build-asan/ as scripts/test.sh
# configures it. A run writes only under DIR/fuzz-work/TARGET/: the corpus copy it grows
# (corpus/), libFuzzer's log (fuzz.log) and an input that crashed or broke an invariant
# (crash-*, leak-*, timeout-*, oom-*). ctest runs each target this way for
# NB_FUZZ_SECONDS. Exit 1 if a target crashed or failed, 2 on a usage error.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage() {
    echo "usage: scripts/fuzz.sh TARGET|all|seeds [--time SECONDS] [--parallel] [--build DIR]" >&2
    exit 2
}
[[ $# -ge 1 ]] || usage
[[ $1 == -h || $1 == --help ]] && { sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0; }
what=$1
shift
secs=1800
parallel=0
build="$ROOT/build-asan"
while [[ $# -gt 0 ]]; do
    case $1 in
        --time) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage; secs=$2; shift 2 ;;
        --build) [[ $# -ge 2 ]] || usage; build=$2; shift 2 ;;
        --parallel) parallel=1; shift ;;
        -h | --help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) usage ;;
    esac
done

# The unit tests (under DIR/tests/) that hand their inputs to test::fuzz_seed;
# bpf_prog_test needs root: the kernel's own ring-buffer records.
SEED_TESTS=(wg_quick_test nb_control_tests uapi_protocol_test netlink_codec_test rtnl_reply_test activity_test anonymizer_test
    bpf_prog_test)
# The target list is the one in tests/fuzz/tests.cmake.
mapfile -t targets < <(sed -n 's/^ *nb_fuzz_target(\([a-z0-9_]*\) .*/\1/p' "$ROOT/tests/fuzz/tests.cmake")
case $what in
    all) run=("${targets[@]}") ;;
    seeds) ;;
    *)
        [[ " ${targets[*]} " == *" $what "* ]] || {
            echo "scripts/fuzz.sh: no target '$what'; targets: ${targets[*]}" >&2
            exit 2
        }
        run=("$what")
        ;;
esac

fuzzer() {
    local bin="$build/tests/fuzz/fuzz_$1"
    if [[ ! -x $bin ]]; then
        echo "scripts/fuzz.sh: no $bin: build $build with clang and -DNB_FUZZ=ON, e.g." \
            "bash scripts/build.sh $build -DCMAKE_C_COMPILER=clang-14" \
            "-DCMAKE_CXX_COMPILER=clang++-14 -DNB_SANITIZE=ON -DNB_BUILD_BENCH=OFF -DNB_FUZZ=ON" >&2
        return 1
    fi
    echo "$bin"
}

if [[ $what == seeds ]]; then
    seed_dir=$(mktemp -d)
    trap 'rm -rf "$seed_dir"' EXIT
    for t in "${SEED_TESTS[@]}"; do
        NB_FUZZ_SEED_DIR=$seed_dir "$build/tests/$t" >/dev/null 2>&1 ||
            echo "scripts/fuzz.sh: warning: $t failed or skipped; its seeds may be missing" >&2
    done
    status=0
    for t in "${targets[@]}"; do
        bin=$(fuzzer "$t") || exit 1
        merged=$(mktemp -d)
        artifacts="$seed_dir/artifacts-$t"
        mkdir -p "$ROOT/tests/fuzz/corpus/$t" "$seed_dir/$t" "$artifacts"
        # An input the tests pass must not crash its target: merge would leave it out.
        if "$bin" -merge=1 -artifact_prefix="$artifacts/" "$merged" "$ROOT/tests/fuzz/corpus/$t" \
            "$seed_dir/$t" >"$seed_dir/merge-$t.log" 2>&1 &&
            [[ -z $(ls -A "$artifacts") ]]; then
            rm -rf "$ROOT/tests/fuzz/corpus/$t"
            mv "$merged" "$ROOT/tests/fuzz/corpus/$t"
            chmod 755 "$ROOT/tests/fuzz/corpus/$t"
            printf '%-20s %4d seeds from the tests -> %4d files, %6d bytes\n' "$t" \
                "$(find "$seed_dir/$t" -type f | wc -l)" \
                "$(find "$ROOT/tests/fuzz/corpus/$t" -type f | wc -l)" \
                "$(cat "$ROOT/tests/fuzz/corpus/$t"/* 2>/dev/null | wc -c)"
        else
            grep -E -A 20 'ERROR: |runtime error:|invariant broken' "$seed_dir/merge-$t.log" | head -n 40 >&2
            echo "scripts/fuzz.sh: merging the seeds of $t failed; corpus left as it was" >&2
            rm -rf "$merged"
            status=1
        fi
    done
    exit "$status"
fi

# One target's run; its row of figures goes to $work/row. Returns 1 if it crashed or failed.
run_target() {
    local t=$1 bin work t0 rc elapsed log execs rate last cov ft corp crashes result
    bin=$(fuzzer "$t") || return 1
    work="$build/fuzz-work/$t"
    rm -rf "$work"
    mkdir -p "$work"
    # A copy: libFuzzer adds to (and reduces in) the first corpus it is given.
    mkdir -p "$work/corpus"
    if [[ -d $ROOT/tests/fuzz/corpus/$t ]]; then cp -r "$ROOT/tests/fuzz/corpus/$t/." "$work/corpus/"; fi
    echo "==> fuzz: $t for ${secs}s (log: $work/fuzz.log)"
    t0=$SECONDS
    rc=0
    "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/" "$work/corpus" >"$work/fuzz.log" 2>&1 || rc=$?
    elapsed=$((SECONDS - t0))
    log="$work/fuzz.log"
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+.*cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1)
    cov=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$last")
    corp=$(sed -nE 's/.*corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
    crashes=$(find "$work" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    result=ok
    if ((rc != 0 || crashes != 0)); then
        result="FAILED (exit $rc)"
        # What broke and where, with the input, for ctest's --output-on-failure.
        grep -E -A 40 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|invariant broken' "$log" |
            head -n 60
        find "$work" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
            -o -name 'oom-*' \) -printf 'input: %p\n'
    fi
    printf '%-20s %12s %9s %6s %7s %12s %7s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$elapsed" "$crashes" "$result" >"$work/row"
    [[ $result == ok ]]
}

status=0
if ((parallel)); then
    pids=()
    for t in "${run[@]}"; do
        # A subshell keeps the functions and variables; nice 19 leaves the cores to other work.
        (renice -n 19 -p "$BASHPID" >/dev/null && run_target "$t") &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || status=1; done
else
    for t in "${run[@]}"; do run_target "$t" || status=1; done
fi

printf '%-20s %12s %9s %6s %7s %12s %7s %8s  %s\n' target execs execs/s cov ft corpus seconds \
    crashes result
for t in "${run[@]}"; do cat "$build/fuzz-work/$t/row" 2>/dev/null || echo "$t: no result"; done
exit "$status"
