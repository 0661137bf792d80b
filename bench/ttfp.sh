#!/usr/bin/env bash
# Time to first packet: an idle lazy peer against an eager peer that has its endpoint
# but no session yet, interleaved in one run on the same lab and remote, for each trigger
# engine; and, for scale, a placeholder-endpoint wake without replay.
#
#   bench/ttfp.sh [--wakes N] [--peers N] [--engines "bpf udp"] [--placeholder N]
#                                    (as root; NBAGENT defaults to build/cli/nbagent)
#   vagrant/qemu/run-vm.sh 6.12 -- env NB_TEST_WG=kernel NBAGENT=$PWD/build/cli/nbagent \
#       NBTRAFFIC=$PWD/build/tests/nbtraffic bash bench/ttfp.sh     (kernel WireGuard)
#
# Each wake is the round trip of one ping to the remote (10.100.0.2):
#   lazy  : `nbagent peer idle B` (no endpoint, no session), then ping. BPF: held by the
#           tc program, connector, endpoint set, replay, handshake, echo. UDP: WireGuard
#           queues it and sends its handshake initiation to B's listener; connector,
#           endpoint set, the initiation forwarded, handshake, echo.
#   eager : B's session dropped by removing and re-adding it with its endpoint (what a
#           fresh eager peer looks like), then ping: handshake, echo. Interleaved with the
#           lazy wakes of the same agent run.
#   placeholder (--placeholder N wakes, default 3; 0 skips): the UDP engine with
#           --udp-forward-handshake off, i.e. NetBird's way: the listener's catch is not
#           passed on, so the first packet waits for WireGuard's handshake retry.
# The difference to eager is what laziness costs the first packet.
# Wakes are 100 ms apart: a WireGuard responder ignores a peer's handshake initiations
# that come less than 20 ms after its previous one (flood protection), and the initiator
# would then wait out the 5 s retry; real peers never wake that often.
set -euo pipefail
WAKES=100
PEERS=1000
ENGINES="bpf udp"
PLACEHOLDER=3
while (($#)); do
    case $1 in
        --wakes) WAKES=$2; shift 2 ;;
        --peers) PEERS=$2; shift 2 ;;
        --engines) ENGINES=$2; shift 2 ;;
        --placeholder) PLACEHOLDER=$2; shift 2 ;;
        *) echo "usage: bench/ttfp.sh [--wakes N] [--peers N] [--engines \"bpf udp\"] [--placeholder N]" >&2; exit 2 ;;
    esac
done
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"

lab_up --peers "$PEERS" >/dev/null


# run_agent NAME WAKES EAGER(0|1) AGENT-ARGS...: one agent on a fresh interface; fills
# samples_NAME (and samples_eager_NAME when EAGER is 1) with interleaved wakes.
run_agent() {
    local name=$1 n=$2 eager=$3 i b_allowed
    shift 3
    in_a ip link del "$WG_A" 2>/dev/null || true
    start_agent "$@" >/dev/null
    b_allowed=$(in_a wg show "$WG_A" allowed-ips | awk -v k="$B_PUBKEY" '$1 == k {$1=""; print}' |
        sed 's/^ //; s/ /,/g')
    declare -ga "samples_$name=()" "samples_eager_$name=()"
    local -n lazy_out="samples_$name" eager_out="samples_eager_$name"
    for ((i = 0; i < n; i++)); do
        nb_cli peer idle "$B_PUBKEY" >/dev/null
        sleep 0.1
        lazy_out+=("$(ping_ms)")
        ((eager)) || continue
        in_a wg set "$WG_A" peer "$B_PUBKEY" remove
        in_a wg set "$WG_A" peer "$B_PUBKEY" endpoint "$UNDERLAY_B:51820" allowed-ips "$b_allowed"
        sleep 0.1
        eager_out+=("$(ping_ms)")
    done
    backend=$(nb_cli status --json | jq -r .wg_backend)
    stop_agent >/dev/null
}

for engine in $ENGINES; do
    case $engine in bpf | udp) ;; *) fail "unknown engine '$engine' (bpf or udp)" ;; esac
    run_agent "$engine" "$WAKES" 1 --trigger "$engine"
done
if ((PLACEHOLDER > 0)); then
    run_agent placeholder "$PLACEHOLDER" 0 --trigger udp --udp-forward-handshake off
fi

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
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "time to first packet, agent side $backend WireGuard, remote ${NB_TEST_WG:-userspace}, kernel $(uname -r), $(nproc) cores ($cpu), $PEERS peers, $WAKES wakes each"
printf '| %-44s | %9s | %9s | %9s |\n' case "p50 ms" "p99 ms" "mean ms"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "-----------" "-----------" "-----------"
results=()
row() { printf '| %-44s | %9.3f | %9.3f | %9.3f |\n' "$1" "$2" "$3" "$4"; }
for engine in $ENGINES; do
    declare -n l="samples_$engine" e="samples_eager_$engine"
    read -r _ _ lp50 lp99 lmean <<<"$(stats lazy "${l[@]}")"
    read -r _ _ ep50 ep99 emean <<<"$(stats eager "${e[@]}")"
    row "eager (endpoint set, no session), $engine run" "$ep50" "$ep99" "$emean"
    case $engine in
        bpf) row "lazy, BPF engine (hold + replay)" "$lp50" "$lp99" "$lmean" ;;
        udp) row "lazy, UDP engine (initiation forwarded)" "$lp50" "$lp99" "$lmean" ;;
    esac
    awk -v a="$lp50" -v b="$ep50" -v c="$lp99" -v d="$ep99" -v n="$engine" 'BEGIN {
        printf "| %-44s | %+9.3f | %+9.3f | %9s |\n", "lazy - eager (" n ")", a - b, c - d, "" }'
    results+=("RESULT ttfp engine=$engine lazy_p50=$lp50 lazy_p99=$lp99 eager_p50=$ep50 eager_p99=$ep99")
    unset -n l e
done
if ((PLACEHOLDER > 0)); then
    # shellcheck disable=SC2154 # filled by run_agent placeholder
    read -r _ pn pp50 pp99 pmean <<<"$(stats placeholder "${samples_placeholder[@]}")"
    row "placeholder endpoint, no replay ($pn wakes)" "$pp50" "$pp99" "$pmean"
    results+=("RESULT ttfp engine=placeholder lazy_p50=$pp50 lazy_p99=$pp99")
fi
# For bench/run.sh.
printf '%s\n' "${results[@]}"
