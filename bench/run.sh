#!/usr/bin/env bash
# The benchmark suite: every bench of issue 6 in one run on this machine, each against
# its baseline measured in the same run, then one table of the targets.
#
#   sudo bench/run.sh [--quick] [--out DIR]
#
# --quick: smaller runs (fewer wakes, batches and peers) to see that it all works.
# Each bench's full output is kept in DIR (default /tmp/nbagent-bench-<time>); the table
# at the end is built from their RESULT lines. Needs the build (scripts/setup.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QUICK=0
OUT=/tmp/nbagent-bench-$(date +%Y%m%d-%H%M%S)
while (($#)); do
    case $1 in
        --quick) QUICK=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        *) echo "usage: bench/run.sh [--quick] [--out DIR]" >&2; exit 2 ;;
    esac
done
[[ $(id -u) == 0 ]] || { echo "bench/run.sh: needs root (BPF, network namespaces)" >&2; exit 2; }
BUILD=${NB_BUILD:-$ROOT/build}
[[ -x $BUILD/bench/prog_cost_bench && -x $BUILD/cli/nbagent ]] ||
    { echo "bench/run.sh: $BUILD is not built (scripts/setup.sh)" >&2; exit 2; }
mkdir -p "$OUT"

if ((QUICK)); then
    SIZES=1000,100000 BATCHES=10 WAKES=20 PLACEHOLDER=1 STORM=2000 STATUS_PEERS=10000 RUNS=5
    MAP_PEERS=10000 STANDIN_PEERS=20000
else
    SIZES=1000,100000,1000000 BATCHES=30 WAKES=100 PLACEHOLDER=3 STORM=10000 STATUS_PEERS=65000 RUNS=10
    MAP_PEERS=60000 # wireguard-go holds 65,536
    STANDIN_PEERS=100000
fi

# bench NAME CMD...: runs one bench, its output to $OUT/NAME.txt and the screen.
bench() {
    local name=$1
    shift
    echo "=== $name: $*"
    if ! "$@" 2>&1 | tee "$OUT/$name.txt"; then
        echo "=== $name FAILED (see $OUT/$name.txt)"
        failed+=("$name")
    fi
}
failed=()
export NBAGENT=$BUILD/cli/nbagent NBTRAFFIC=$BUILD/tests/nbtraffic
bench prog_cost "$BUILD/bench/prog_cost_bench" --sizes "$SIZES" --batches "$BATCHES"
bench ttfp bash "$ROOT/bench/ttfp.sh" --wakes "$WAKES" --placeholder "$PLACEHOLDER"
bench storm bash "$ROOT/bench/storm.sh" --peers "$STORM"
bench status bash "$ROOT/bench/status.sh" --peers "$STATUS_PEERS" --runs "$RUNS"
# Beyond wireguard-go's 65,536: the same agent and CLI with a WireGuard stand-in (a status
# reply never asks WireGuard), once at the size above to compare, once at the target's.
bench status_standin_same "$BUILD/bench/status_standin" --cli "$NBAGENT" --peers "$STATUS_PEERS" --runs "$RUNS"
bench status_standin "$BUILD/bench/status_standin" --cli "$NBAGENT" --peers "$STANDIN_PEERS" --runs "$RUNS"
ns=nbbench-map-$$
ip netns add "$ns"
bench network_map ip netns exec "$ns" "$BUILD/bench/lifecycle_bench" --backend userspace \
    --peers "$MAP_PEERS" --rounds 3
ip netns del "$ns"

# get FILE FILTER KEY: the value of KEY in the first RESULT line of FILE with all of the
# space-separated key=value pairs of FILTER.
get() {
    awk -v filter="$2" -v key="$3" '
        $1 != "RESULT" { next }
        {
            delete kv
            for (i = 2; i <= NF; i++) { split($i, p, "="); kv[p[1]] = substr($i, length(p[1]) + 2) }
            n = split(filter, f, " ")
            for (i = 1; i <= n; i++) { split(f[i], p, "="); if (kv[p[1]] != p[2]) next }
            print kv[key]; exit
        }' "$OUT/$1.txt" 2>/dev/null
}
row() { printf '| %-44s | %-30s | %-26s | %-14s | %-4s |\n' "$@"; }
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v != "" && v + 0 <= t + 0) ? "yes" : "no" }'; }

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "nbagent benchmark suite, $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "kernel $(uname -r), $(nproc) cores ($cpu), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); outputs in $OUT"
row target measured "baseline (same run)" goal met
row "--------------------------------------------" "------------------------------" "--------------------------" "--------------" "----"
largest=${SIZES##*,}
e50=$(get prog_cost "peers=$largest dense=1" empty_tc_program_p50)
h50=$(get prog_cost "peers=$largest dense=1" connected_peer___32_hit_p50)
if [[ -n $e50 && -n $h50 ]]; then
    d=$((h50 - e50))
    row "per packet, /32 hit, $largest peers (dense)" "+$d ns (p50 $h50 ns)" "empty tc program $e50 ns" "<= +20 ns" "$(verdict "$d" 20)"
    hh=$(get prog_cost "peers=$largest dense=0" connected_peer___32_hit_p50)
    eh=$(get prog_cost "peers=$largest dense=0" empty_tc_program_p50)
    row "per packet, /32 hit, $largest peers (hash)" "+$((hh - eh)) ns (p50 $hh ns)" "empty tc program $eh ns" "(IPv6, sparse)" ""
    mb=$(get prog_cost "peers=$largest dense=1" map_bytes)
    row "kernel maps, $largest peers (dense)" "$((mb / largest)) B/peer" "" "part of < 512" ""
fi
for engine in bpf udp; do
    l99=$(get ttfp "engine=$engine" lazy_p99)
    e99=$(get ttfp "engine=$engine" eager_p99)
    [[ -n $l99 && -n $e99 ]] || continue
    d=$(awk -v a="$l99" -v b="$e99" 'BEGIN {printf "%.2f", a - b}')
    goal=1
    [[ $engine == udp ]] && goal=5
    row "first packet, $engine engine, p99" "+$d ms ($l99 ms)" "eager peer p99 $e99 ms" "< +$goal ms" "$(verdict "$d" "$goal")"
done
p50=$(get ttfp "engine=placeholder" lazy_p50)
[[ -n $p50 ]] && row "first packet, placeholder, no replay, p50" "$p50 ms" "(the 5 s class)" "" ""
for variant in bpf bpf-paused udp; do
    dr=$(get storm "variant=$variant" drain_ms)
    [[ -n $dr ]] || continue
    w=$(get storm "variant=$variant" woken)
    st=$(get storm "variant=$variant" stuck)
    cpu_ms=$(get storm "variant=$variant" cpu_ms)
    lost=$(get storm "variant=$variant" lost)
    ok=no
    [[ $w == "$STORM" && $st == 0 ]] && ok=yes
    row "wake storm $STORM peers/1 s, $variant" "drain $dr ms, CPU $cpu_ms ms" "woken $w, lost $lost, stuck $st" "all, none stuck" "$ok"
done
j50=$(get status "command=status_-d_--json" p50)
s50=$(get status "command=status" p50)
[[ -n $j50 ]] && row "status -d --json, $STATUS_PEERS peers, p50" "$j50 ms" "status (counts) $s50 ms" "< 100 ms (100k)" "$(verdict "$j50" 100)"
k50=$(get status_standin_same "command=status_-d_--json" p50)
[[ -n $k50 ]] && row "... same, WireGuard stand-in, p50" "$k50 ms" "wireguard-go above: $j50 ms" "(comparison)" ""
k50=$(get status_standin "command=status_-d_--json" p50)
c50=$(get status_standin "command=status" p50)
[[ -n $k50 ]] && row "status -d --json, $STANDIN_PEERS peers (stand-in), p50" "$k50 ms" "status (counts) $c50 ms" "< 100 ms (100k)" "$(verdict "$k50" 100)"
inst=$(get network_map "op=install" ms)
apply=$(get network_map "op=diff_apply" ms)
full=$(get network_map "op=baseline:_full_replace" ms)
[[ -n $inst ]] && row "network map install, $MAP_PEERS peers" "$inst ms" "" "" ""
[[ -n $apply && -n $full ]] &&
    row "network map, 1 % churn diff, $MAP_PEERS peers" "$apply ms" "full replace $full ms" "" ""
echo
echo "Not in this suite (see BENCHMARKS.md): 1M idle peers (bench/idle_cost.sh), the network"
echo "map on kernel WireGuard (the VM), the engines side by side."
((${#failed[@]} == 0)) || { echo "FAILED: ${failed[*]}"; exit 1; }
