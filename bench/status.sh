#!/usr/bin/env bash
# `nbagent status` against a running agent with many peers, as an operator runs it.
#
#   bench/status.sh [--peers N] [--runs N]     (as root; default 65000 peers, the most
#                                               wireguard-go takes is 65536)
# Reports p50/p99 wall time of `status` (counts), `status -d --json` and `status -d`
# (table), each run as a separate process through the control socket, output discarded.
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
start_agent >/dev/null
t1=$(date +%s.%N)
ping_check "$REMOTE_V4" >/dev/null # one peer Connected, with real counters

stats() {
    printf '%s\n' "$@" | sort -g | awk '
        { v[NR] = $1 }
        END { printf "%.1f %.1f\n", v[int((NR * 50 + 99) / 100)], v[int((NR * 99 + 99) / 100)] }'
}
declare -A res
results=()
for what in "status" "status -d --json" "status -d"; do
    runs=()
    # shellcheck disable=SC2086
    for ((i = 0; i < RUNS; i++)); do runs+=("$(time_ms nb_cli $what)"); done
    res[$what]=$(stats "${runs[@]}")
done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
bytes=$(nb_cli status -d --json | wc -c)
stop_agent >/dev/null

echo
echo "nbagent status, $PEERS peers on wireguard-go, $RUNS runs each, kernel $(uname -r), $(nproc) cores"
echo "agent start (config to answering, incl. wireguard-go install): $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f s", b - a}'); agent RSS $((rss / 1024)) MiB; status -d --json is $((bytes / 1024 / 1024)) MiB"
printf '| %-20s | %9s | %9s |\n' command "p50 ms" "p99 ms"
printf '|%s|%s|%s|\n' "----------------------" "-----------" "-----------"
for what in "status" "status -d --json" "status -d"; do
    read -r p50 p99 <<<"${res[$what]}"
    printf '| %-20s | %9s | %9s |\n' "$what" "$p50" "$p99"
    # For bench/run.sh.
    results+=("RESULT status peers=$PEERS command=${what// /_} p50=$p50 p99=$p99 rss_kib=$rss")
done
printf '%s\n' "${results[@]}"
