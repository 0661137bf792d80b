#!/usr/bin/env bash
# The operator's surface at scale (issue 18), in one run: a /metrics scrape (time, size,
# the agent's CPU) and `status -d --peer KEY` next to the unfiltered `status -d --json`,
# at 1k, 65k and 100k peers on the WireGuard stand-in (bench/status_standin), and at 1k
# and 65k on real wireguard-go (bench/status.sh; it stops at 65,536 peers).
#
#   sudo NBAGENT=$PWD/build/cli/nbagent NBTRAFFIC=$PWD/build/tests/nbtraffic \
#       bench/operator_surface.sh [--runs N] [--build DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RUNS=20
BUILD=$HERE/../build
while (($#)); do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        *) echo "usage: bench/operator_surface.sh [--runs N] [--build DIR]" >&2; exit 2 ;;
    esac
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for n in 1000 65000 100000; do
    echo "== stand-in, $n peers" >&2
    "$BUILD/bench/status_standin" --cli "$BUILD/cli/nbagent" --peers "$n" --runs "$RUNS" | tee -a "$out" >&2
done
for n in 1000 65000; do
    echo "== wireguard-go, $n peers" >&2
    NBAGENT=${NBAGENT:-$BUILD/cli/nbagent} bash "$HERE/status.sh" --peers "$n" --runs "$RUNS" | tee -a "$out" >&2
done

echo
echo "operator surface, $RUNS runs each, kernel $(uname -r), $(nproc) cores (p50/p99 ms; CPU per call)"
printf '| %-12s | %7s | %-28s | %-24s | %-28s | %-20s |\n' WireGuard peers "metrics scrape" "scrape bytes / CPU" \
    "status -d --peer KEY" "status -d --json"
printf '|%s|%s|%s|%s|%s|%s|\n' -------------- --------- ------------------------------ \
    -------------------------- ------------------------------ ----------------------
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
row() { # KIND PEERS TAG
    local kind=$1 n=$2 tag=$3 scrape peer full bytes
    scrape=$(grep "^RESULT $tag peers=$n command=metrics_scrape" "$out" | head -1)
    peer=$(grep "^RESULT $tag peers=$n command=status_-d_--peer_KEY" "$out" | head -1)
    full=$(grep "^RESULT $tag peers=$n command=status_-d_--json" "$out" | head -1)
    bytes=$(grep "^RESULT $tag peers=$n metrics_bytes=" "$out" | head -1)
    local cpu="" pcpu=""
    [[ $tag == status_standin ]] && cpu=", $(field process_cpu_ms "$scrape") ms" &&
        pcpu=", loop $(field agent_cpu_ms "$peer") ms"
    printf '| %-12s | %7s | %-28s | %-24s | %-28s | %-20s |\n' "$kind" "$n" \
        "$(field p50 "$scrape") / $(field p99 "$scrape")" "$(field metrics_bytes "$bytes")$cpu" \
        "$(field p50 "$peer") / $(field p99 "$peer")$pcpu" "$(field p50 "$full") / $(field p99 "$full")"
}
for n in 1000 65000 100000; do row stand-in "$n" status_standin; done
for n in 1000 65000; do row wireguard-go "$n" status; done
