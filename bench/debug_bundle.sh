#!/usr/bin/env bash
# A debug bundle of a big agent: how long it takes, how big it is, and what it costs the
# wakes that happen meanwhile. One run: wakes of B while nothing else happens (quiet),
# then wakes all through a bundle with a CPU profile (during); then a bundle without
# profiles, timed alone, plain and anonymized.
#
#   bench/debug_bundle.sh [--peers N] [--wakes N] [--profile-duration 30s]  (as root)
#   vagrant/qemu/run-vm.sh 6.12 -- env NB_TEST_WG=kernel NBAGENT=$PWD/build/cli/nbagent \
#       bash bench/debug_bundle.sh --peers 100000                  (kernel WireGuard)
#
# Each wake: `nbagent peer idle B`, 100 ms, then one ping (bench/ttfp.sh's lazy wake).
set -euo pipefail
PEERS=65536
WAKES=40
PROFILE=30s
while (($#)); do
    case $1 in
        --peers) PEERS=$2; shift 2 ;;
        --wakes) WAKES=$2; shift 2 ;;
        --profile-duration) PROFILE=$2; shift 2 ;;
        *) echo "usage: bench/debug_bundle.sh [--peers N] [--wakes N] [--profile-duration D]" >&2; exit 2 ;;
    esac
done
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"

lab_up --peers "$PEERS" >/dev/null
route_dummy_endpoints_via_b
start_idle_agent bpf "$PEERS" 900

wake() {
    nb_cli peer idle "$B_PUBKEY" >/dev/null
    sleep 0.1
    ping_ms
}
quiet=()
for ((i = 0; i < WAKES; i++)); do quiet+=("$(wake)"); done

# Wakes for as long as the bundle with a profile runs.
out=$LAB_DIR/profiled.tar.gz
t0=$(now_ms)
nb_cli debug bundle -o "$out" --profile-duration "$PROFILE" >"$LAB_DIR/bundle.out" 2>&1 &
bundle_pid=$!
during=()
while kill -0 "$bundle_pid" 2>/dev/null; do during+=("$(wake)"); done
wait "$bundle_pid" || fail "debug bundle failed: $(cat "$LAB_DIR/bundle.out")"
profiled_ms=$(($(now_ms) - t0))
profiled_bytes=$(stat -c %s "$out")

plain_ms=$(time_ms nb_cli debug bundle -o "$LAB_DIR/plain.tar.gz" --no-profiles)
plain_bytes=$(stat -c %s "$LAB_DIR/plain.tar.gz")
anon_ms=$(time_ms nb_cli debug bundle -o "$LAB_DIR/anon.tar.gz" --no-profiles --anonymize)
anon_bytes=$(stat -c %s "$LAB_DIR/anon.tar.gz")
rss_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$AGENT_PID/status")
backend=$(nb_cli status --json | jq -r .wg_backend)
stop_agent >/dev/null

qp50=$(median "${quiet[@]}")
dp50=$(median "${during[@]}")
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "debug bundle, $backend WireGuard, $PEERS peers, kernel $(uname -r), $(nproc) cores ($cpu); agent RSS after: $((rss_kb / 1024)) MiB"
printf '| %-40s | %10s | %12s |\n' bundle "seconds" "bytes"
printf '|%s|%s|%s|\n' "------------------------------------------" "------------" "--------------"
awk -v a="$profiled_ms" -v b="$profiled_bytes" -v p="$PROFILE" 'BEGIN { printf "| %-40s | %10.1f | %12d |\n", "with a " p " CPU profile", a / 1000, b }'
awk -v a="$plain_ms" -v b="$plain_bytes" 'BEGIN { printf "| %-40s | %10.1f | %12d |\n", "--no-profiles", a / 1000, b }'
awk -v a="$anon_ms" -v b="$anon_bytes" 'BEGIN { printf "| %-40s | %10.1f | %12d |\n", "--no-profiles --anonymize", a / 1000, b }'
echo
printf '| %-40s | %6s | %9s | %9s |\n' "time to first packet (lazy wake)" wakes "p50 ms" "p99 ms"
printf '|%s|%s|%s|%s|\n' "------------------------------------------" "--------" "-----------" "-----------"
printf '| %-40s | %6d | %9.3f | %9.3f |\n' quiet "${#quiet[@]}" "$qp50" "$(p99 "${quiet[@]}")"
printf '| %-40s | %6d | %9.3f | %9.3f |\n' "during the profiled bundle" "${#during[@]}" "$dp50" "$(p99 "${during[@]}")"
awk -v a="$dp50" -v b="$qp50" 'BEGIN { printf "during / quiet p50: %.2fx (target: at most 2x)\n", a / b }'
# What the bundles hold, file by file (a file that says WireGuard could not be read shows
# here as a small wireguard.txt).
for f in "$out" "$LAB_DIR/plain.tar.gz"; do
    echo "$(basename "$f"): $(tar -tvzf "$f" | awk '{n = split($6, p, "/"); printf "%s %d, ", p[n], $3}')"
done
tar -xzOf "$out" --wildcards '*/wireguard.txt' | grep -m1 'could not be read' &&
    fail "the profiled bundle could not read WireGuard"
echo "RESULT debug_bundle peers=$PEERS profiled_s=$((profiled_ms / 1000)) bytes=$profiled_bytes plain_ms=$plain_ms anon_ms=$anon_ms quiet_p50=$qp50 during_p50=$dp50"
