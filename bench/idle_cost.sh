#!/usr/bin/env bash
# What an idle peer costs: the kernel maps (fdinfo memlock of the agent's map fds) and
# the agent's memory, with every peer Idle; and `status -d --json` at that size (issue
# 6: < 512 B/peer at 1M in BPF mode, status < 100 ms at 100k; the UDP engine at the
# largest count it reaches).
#
#   bench/idle_cost.sh [--sizes "100000 1000000"] [--runs N] [--trigger bpf|udp] [--keep]
#                                                                               (as root)
#
# A million peers need kernel WireGuard (wireguard-go holds 65,536): run it in a VM with
# room for the kernel's own ~3.3 KB per WireGuard peer, e.g.
#   vagrant/qemu/run-vm.sh --memory 12G --timeout 3600 6.12 -- \
#       env NB_TEST_WG=kernel bash bench/idle_cost.sh --sizes "100000 1000000" --keep
# Each size runs on a fresh lab. --keep leaves the last one for the VM to drop (deleting
# a kernel WireGuard device with N peers takes N RCU grace periods).
#
# Columns: maps     sum of memlock over the agent's BPF map fds (slots, routes, ring)
#          RssAnon  the agent's heap and stacks (its own per-peer memory)
#          RssFile  mapped files and the mmap'd BPF arrays (these are also in maps)
#          B/peer   (maps + RssAnon) / peers, and (maps + VmRSS) / peers as an upper
#                   bound that counts the mmap'd arrays twice
#          kernel   growth of Slab + VmallocUsed + Percpu (/proc/meminfo) from before the
#                   agent made the interface: WireGuard's own peers (the same eager) and
#                   the engine's maps or sockets; system-wide, so the machine is quiet
#          fds      the agent's open files (a socket per idle peer for UDP)
set -euo pipefail
SIZES="100000 1000000"
RUNS=5
KEEP=0
TRIGGER=bpf
while (($#)); do
    case $1 in
        --sizes) SIZES=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --trigger) TRIGGER=$2; shift 2 ;;
        *) echo "usage: bench/idle_cost.sh [--sizes \"N...\"] [--runs N] [--trigger bpf|udp] [--keep]" >&2; exit 2 ;;
    esac
done
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"
export NB_AGENT_START_TIMEOUT=3600 NB_AGENT_STOP_TIMEOUT=3600

kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$AGENT_PID/status"; }
# "name bytes" for each BPF map the agent holds open, once per map (by id: a map may be
# open through more than one fd).
# Only the map fds are read: with the UDP engine the agent holds a socket per idle peer,
# and a process per fd took hours at 1M under emulation.
agent_maps() {
    local fd
    find /proc/"$AGENT_PID"/fd -mindepth 1 -lname 'anon_inode:bpf-map' -printf '%f\n' 2>/dev/null |
        while read -r fd; do
            awk '$1 == "map_id:" {id = $2} $1 == "memlock:" {m = $2} END {if (id != "") print id, m}' \
                "/proc/$AGENT_PID/fdinfo/$fd" 2>/dev/null || true
        done | sort -u -k1,1n | while read -r id bytes; do
        printf '%s %s\n' "$(bpftool map show id "$id" --json | jq -r .name)" "$bytes"
    done
}

rows=()
results=()
set -- $SIZES
while (($#)); do
    n=$1
    shift
    lab_up --peers "$n" >/dev/null
    start_idle_agent "$TRIGGER" "$n" 3600
    k0=$KERNEL_KB_BEFORE setup=$SETUP_MS
    sleep 2
    maps=0
    breakdown=""
    while read -r name bytes; do
        maps=$((maps + bytes))
        breakdown+=" $name=$((bytes / n))"
    done < <(agent_maps)
    anon=$(($(kib RssAnon) * 1024))
    file=$(($(kib RssFile) * 1024))
    rss=$(($(kib VmRSS) * 1024))
    kernel=$((($(kernel_kb) - k0) * 1024 / n))
    fds=$(find "/proc/$AGENT_PID/fd" -mindepth 1 | wc -l)
    # status against the same agent: counts, and every peer in JSON.
    s=()
    d=()
    for ((i = 0; i < RUNS; i++)); do
        s+=("$(time_ms nb_cli status)")
        d+=("$(time_ms nb_cli status -d --json)")
    done
    per=$(((maps + anon) / n))
    upper=$(((maps + rss) / n))
    rows+=("$(printf '| %9s | %8.1f s | %8.1f | %8.1f | %7.1f | %6s | %6s | %6s | %7s | %8s | %10s |' "$n" \
        "$(awk -v t="$setup" 'BEGIN {print t / 1000}')" \
        "$(awk -v b="$maps" 'BEGIN {print b / 1048576}')" \
        "$(awk -v b="$anon" 'BEGIN {print b / 1048576}')" \
        "$(awk -v b="$file" 'BEGIN {print b / 1048576}')" \
        "$per" "$upper" "$kernel" "$fds" "$(median "${s[@]}")" "$(median "${d[@]}")")")
    echo "${rows[-1]}  maps B/peer:$breakdown" >&2
    results+=("RESULT idle_cost trigger=$TRIGGER peers=$n kernel_per_peer=$kernel fds=$fds maps_bytes=$maps rss_anon=$anon rss_file=$file per_peer=$per upper=$upper status_ms=$(median "${s[@]}") status_json_ms=$(median "${d[@]}") maps_per_peer:$breakdown")
    if (($#)) || ((!KEEP)); then
        stop_agent >/dev/null
        in_a ip link del "$WG_A" 2>/dev/null || true
        lab_down
    fi
done
((KEEP)) && trap - EXIT # the last lab goes with the machine (see above)

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "idle cost, $TRIGGER trigger, ${NB_TEST_WG:-userspace} WireGuard, kernel $(uname -r), $(nproc) cores ($cpu); status: median of $RUNS"
echo "| idle peers | setup | maps MiB | RssAnon MiB | RssFile MiB | B/peer | upper B/peer | kernel B/peer | fds | status ms | status -d --json ms |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${rows[@]}"; do echo "$r"; done
printf '%s\n' "${results[@]}"
