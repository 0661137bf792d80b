#!/usr/bin/env bash
# `nbagent status` against a running agent with many peers, as an operator runs it.
#
#   bench/status.sh [--peers N] [--runs N]     (as root; default 65000 peers, the most
#                                               wireguard-go takes is 65536)
# Reports p50/p99 wall time of `status` (counts), `status -d --json`, `status -d` (table),
# `status -d --peer KEY` (B among all) and a scrape of /metrics (curl), each a separate
# process, output discarded; and the scrape's size.
set -euo pipefail
PEERS=65000
RUNS=20
while (($#)); do
    case $1 in
        --peers) PEERS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        *) echo "usage: bench/status.sh [--peers N] [--runs N]" >&2; exit 2 ;;
    esac
done
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"

lab_up --peers "$PEERS" >/dev/null
t0=$(date +%s.%N)
start_agent --metrics-listen 127.0.0.1:9590 >/dev/null
t1=$(date +%s.%N)
ping_check "$REMOTE_V4" >/dev/null # one peer Connected, with real counters

stats() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END { printf "%.1f %.1f\n", v[int((NR * 50 + 99) / 100)], v[int((NR * 99 + 99) / 100)] }'
}
declare -A res
results=()
scrape() { in_a curl -fsS -o /dev/null http://127.0.0.1:9590/metrics; }
COMMANDS=("status" "status -d --json" "status -d" "status -d --peer $B_PUBKEY" "metrics scrape")
for what in "${COMMANDS[@]}"; do
    runs=()
    for ((i = 0; i < RUNS; i++)); do
        if [[ $what == "metrics scrape" ]]; then
            runs+=("$(time_ms scrape)")
        else
            # shellcheck disable=SC2086
            runs+=("$(time_ms nb_cli $what)")
        fi
    done
    res[$what]=$(stats "${runs[@]}")
done
scrape_bytes=$(in_a curl -fsS http://127.0.0.1:9590/metrics | wc -c)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
bytes=$(nb_cli status -d --json | wc -c)
stop_agent >/dev/null

echo
echo "nbagent status, $PEERS peers on wireguard-go, $RUNS runs each, kernel $(uname -r), $(nproc) cores"
echo "agent start (config to answering, incl. wireguard-go install): $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f s", b - a}'); agent RSS $((rss / 1024)) MiB; status -d --json is $((bytes / 1024 / 1024)) MiB"
printf '| %-20s | %9s | %9s |\n' command "p50 ms" "p99 ms"
printf '|%s|%s|%s|\n' "----------------------" "-----------" "-----------"
for what in "${COMMANDS[@]}"; do
    read -r p50 p99 <<<"${res[$what]}"
    name=${what/$B_PUBKEY/KEY}
    printf '| %-20s | %9s | %9s |\n' "$name" "$p50" "$p99"
    # For bench/run.sh.
    results+=("RESULT status peers=$PEERS command=${name// /_} p50=$p50 p99=$p99 rss_kib=$rss")
done
echo "a metrics scrape is $scrape_bytes bytes"
results+=("RESULT status peers=$PEERS metrics_bytes=$scrape_bytes")
printf '%s\n' "${results[@]}"
