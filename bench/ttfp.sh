#!/usr/bin/env bash
# Time to first packet: an idle lazy peer against an eager peer that has its endpoint
# but no session yet, interleaved in one run on the same lab, agent and remote.
#
#   bench/ttfp.sh [--wakes N] [--peers N]      (as root; NBAGENT defaults to build/cli/nbagent)
#   vagrant/qemu/run-vm.sh 6.12 -- env NB_TEST_WG=kernel NBAGENT=$PWD/build/cli/nbagent \
#       NBTRAFFIC=$PWD/build/tests/nbtraffic bash bench/ttfp.sh     (kernel WireGuard)
#
# Each wake is the round trip of one ping to the remote (10.100.0.2):
#   lazy  : `nbagent peer idle B` (no endpoint, no session), then ping: held by the tc
#           program, connector, endpoint set, replay, handshake, echo.
#   eager : B's session dropped by removing and re-adding it with its endpoint (what a
#           fresh eager peer looks like), then ping: handshake, echo.
# The difference of the two distributions is what laziness costs the first packet.
# Wakes are 100 ms apart: a WireGuard responder ignores a peer's handshake initiations
# that come less than 20 ms after its previous one (flood protection), and the initiator
# would then wait out the 5 s retry; real peers never wake that often.
set -euo pipefail
WAKES=100
PEERS=1000
while (($#)); do
    case $1 in
        --wakes) WAKES=$2; shift 2 ;;
        --peers) PEERS=$2; shift 2 ;;
        *) echo "usage: bench/ttfp.sh [--wakes N] [--peers N]" >&2; exit 2 ;;
    esac
done
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"

lab_up --peers "$PEERS" >/dev/null
start_agent >/dev/null
b_allowed=$(in_a wg show "$WG_A" allowed-ips | awk -v k="$B_PUBKEY" '$1 == k {$1=""; print}' |
    sed 's/^ //; s/ /,/g')

# One ping; prints its round trip in ms, or fails the run.
ping_ms() {
    local out
    out=$(in_a ping -c 1 -W 5 "$REMOTE_V4" 2>&1) || fail "ping failed: $out"
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out"
}

lazy=()
eager=()
for ((i = 0; i < WAKES; i++)); do
    nb_cli peer idle "$B_PUBKEY" >/dev/null
    sleep 0.1
    lazy+=("$(ping_ms)")
    in_a wg set "$WG_A" peer "$B_PUBKEY" remove
    in_a wg set "$WG_A" peer "$B_PUBKEY" endpoint "$UNDERLAY_B:51820" allowed-ips "$b_allowed"
    sleep 0.1
    eager+=("$(ping_ms)")
done
backend=$(nb_cli status --json | jq -r .wg_backend)
stop_agent >/dev/null

# stats NAME VALUES...: "NAME n p50 p99 mean" (nearest-rank percentiles).
stats() {
    local name=$1
    shift
    printf '%s\n' "$@" | sort -g | awk -v name="$name" '
        { v[NR] = $1; sum += $1 }
        END {
            p50 = v[int((NR * 50 + 99) / 100)]; p99 = v[int((NR * 99 + 99) / 100)]
            printf "%s %d %.3f %.3f %.3f\n", name, NR, p50, p99, sum / NR
        }'
}
read -r _ n lp50 lp99 lmean <<<"$(stats lazy "${lazy[@]}")"
read -r _ _ ep50 ep99 emean <<<"$(stats eager "${eager[@]}")"
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "time to first packet, agent side $backend WireGuard, remote ${NB_TEST_WG:-userspace}, kernel $(uname -r), $(nproc) cores ($cpu), $PEERS peers, $n wakes each"
printf '| %-34s | %9s | %9s | %9s |\n' case "p50 ms" "p99 ms" "mean ms"
printf '|%s|%s|%s|%s|\n' "------------------------------------" "-----------" "-----------" "-----------"
printf '| %-34s | %9.3f | %9.3f | %9.3f |\n' "eager (endpoint set, no session)" "$ep50" "$ep99" "$emean"
printf '| %-34s | %9.3f | %9.3f | %9.3f |\n' "lazy (idle, BPF hold + replay)" "$lp50" "$lp99" "$lmean"
awk -v a="$lp50" -v b="$ep50" -v c="$lp99" -v d="$ep99" 'BEGIN {
    printf "| %-34s | %+9.3f | %+9.3f | %9s |\n", "lazy - eager", a - b, c - d, ""
    printf "lazy/eager at p50: %.2fx\n", (b > 0 ? a / b : 0) }'
