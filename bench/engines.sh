#!/usr/bin/env bash
# The two trigger engines side by side, in one run on the same lab: BPF (tc programs,
# a map entry per idle peer) against UDP (a loopback listener per idle peer), at each
# size of idle peers.
#
#   bench/engines.sh [--sizes "1000 10000 100000"] [--wakes N] [--engines "bpf udp"]
#                    [--keep]                                     (as root)
#   --keep: leave the lab as it is at the end (a throwaway VM: deleting a kernel WireGuard
#   device with 100k peers takes one RCU grace period per peer).
#
# Per engine and size, with the agent started on a fresh interface (the agent makes it):
#   setup ms     agent start until every peer is Idle in `status`
#   RSS          the agent's VmRSS with every peer idle
#   fds          the agent's open file descriptors then
#   kernel B/peer growth of Slab + VmallocUsed + Percpu (/proc/meminfo) from before the
#                start to then, over the peer count: sockets, epoll items and files for
#                UDP; maps for BPF. System-wide, so the machine should be quiet; it also
#                holds the interface's own kernel memory (the same for both engines).
#   ttfp         first ping to the idle remote B after `nbagent peer idle B`, N wakes.
set -euo pipefail
SIZES="1000 10000 100000"
WAKES=20
ENGINES="bpf udp"
KEEP=0
while (($#)); do
    case $1 in
        --sizes) SIZES=$2; shift 2 ;;
        --wakes) WAKES=$2; shift 2 ;;
        --engines) ENGINES=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        *) echo "usage: bench/engines.sh [--sizes \"N...\"] [--wakes N] [--engines \"bpf udp\"] [--keep]" >&2; exit 2 ;;
    esac
done
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"
export NB_AGENT_START_TIMEOUT=600 NB_AGENT_STOP_TIMEOUT=600


rows=()
for n in $SIZES; do
    lab_up --peers "$n" >/dev/null
    for engine in $ENGINES; do
        # The agent needs an fd per idle listener; without CAP_SYS_RESOURCE it cannot go
        # beyond the hard limit, and says so at start. Recorded, not run.
        hard=$(ulimit -Hn)
        if [[ $engine == udp && $hard != unlimited ]] && ((n + 1024 > hard)) &&
            ! (((0x$(awk '/^CapEff/ {print $2}' /proc/self/status) >> 24) & 1)); then
            rows+=("$(printf '| %7s | %-3s | not run: %s idle peers need %s fds, the hard limit is %s here (no CAP_SYS_RESOURCE to raise it) |||||' \
                "$n" "$engine" "$n" "$((n + 1024))" "$hard")")
            continue
        fi
        start_idle_agent "$engine" "$n" 600
        k0=$KERNEL_KB_BEFORE setup=$SETUP_MS
        sleep 1
        k1=$(kernel_kb)
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status")
        fds=$(find "/proc/$AGENT_PID/fd" -mindepth 1 | wc -l)
        got=$(nb_cli status --json | jq -r .trigger)
        [[ $got == "$engine" ]] || fail "asked for --trigger $engine, the agent runs $got"
        t=()
        for ((i = 0; i < WAKES; i++)); do
            nb_cli peer idle "$B_PUBKEY" >/dev/null
            sleep 0.1
            t+=("$(ping_ms)")
        done
        ((KEEP)) || stop_agent >/dev/null
        per_peer=$(((k1 - k0) * 1024 / n))
        rows+=("$(printf '| %7s | %-3s | %8s | %8.1f | %7s | %7s | %8.2f | %8.2f |' \
            "$n" "$engine" "$setup" "$(awk -v r="$rss" 'BEGIN {print r / 1024}')" "$fds" "$per_peer" \
            "$(median "${t[@]}")" "$(p99 "${t[@]}")")")
        echo "${rows[-1]}" >&2
    done
    ((KEEP)) && break
    in_a ip link del "$WG_A" 2>/dev/null || true
    lab_down
done

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "trigger engines, wireguard-go, kernel $(uname -r), $(nproc) cores ($cpu), $WAKES wakes each"
echo "| idle peers | engine | setup ms | RSS MiB | fds | kernel B/peer | ttfp p50 ms | ttfp p99 ms |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for r in "${rows[@]}"; do echo "$r"; done
if ((KEEP)); then
    trap - EXIT # the VM goes away with everything in it
fi
