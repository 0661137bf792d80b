#!/usr/bin/env bash
# Wake storm: N idle peers all triggered within T ms (one datagram to each, a sweep), on
# the lab with wireguard-go, one run per variant side by side:
#   bpf         the tc programs, default ring buffer (8 MiB)
#   bpf-paused  the tc programs with a 64 KiB ring buffer, and the agent stopped
#               (SIGSTOP) during the sweep: the ring overflows, and the agent must
#               recover the peers whose reports were lost once it runs again
#   udp         a loopback listener per idle peer (NetBird's way), the baseline
#
#   bench/storm.sh [--peers N] [--within-ms T] [--variants "bpf bpf-paused udp"]   (as root)
#
# Per variant: drain ms (sweep start, or the agent's SIGCONT, until the agent has handled
# a trigger for every swept peer: the trace's "trigger" events, polled every 50 ms), the
# agent's CPU time meanwhile, peers woken exactly once, ring-buffer reports lost and
# peers recovered from the marks, and peers still Connecting after the connect timeout
# (the swept peers' endpoints do not exist, so every wake must fail and end Idle).
set -euo pipefail
PEERS=10000
WITHIN=1000
VARIANTS="bpf bpf-paused udp"
TIMEOUT_S=20
while (($#)); do
    case $1 in
        --peers) PEERS=$2; shift 2 ;;
        --within-ms) WITHIN=$2; shift 2 ;;
        --variants) VARIANTS=$2; shift 2 ;;
        *) echo "usage: bench/storm.sh [--peers N] [--within-ms T] [--variants \"bpf bpf-paused udp\"]" >&2; exit 2 ;;
    esac
done
[[ $PEERS =~ ^[0-9]+$ && $PEERS -ge 1 && $PEERS -le 65000 ]] || { echo "--peers: 1..65000 (wireguard-go)" >&2; exit 2; }
[[ $WITHIN =~ ^[0-9]+$ && $WITHIN -ge 1 ]] || { echo "--within-ms: a positive number" >&2; exit 2; }
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"
export NB_AGENT_START_TIMEOUT=600 NB_AGENT_STOP_TIMEOUT=600

cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
counts() { nb_cli status --json | jq -r '"\(.counts.idle) \(.counts.connecting) \(.lost_reports) \(.lost_recovered)"'; }

# B plus PEERS dummies (10.101.0.1 onwards, consecutive): the sweep hits every dummy.
lab_up --peers $((PEERS + 1)) >/dev/null
route_dummy_endpoints_via_b
hz=$(getconf CLK_TCK)
rows=()
results=()
for variant in $VARIANTS; do
    pause=0
    case $variant in
        bpf) args=(--trigger bpf) ;;
        bpf-paused) args=(--trigger bpf --ring-buffer-kib 64) pause=1 ;;
        udp) args=(--trigger udp) ;;
        *) fail "unknown variant '$variant'" ;;
    esac
    in_a ip link del "$WG_A" 2>/dev/null || true
    sleep 1
    start_agent "${args[@]}" --connect-timeout "${TIMEOUT_S}s" >/dev/null
    wait_for 600 "all peers Idle ($variant)" eval '[[ $(counts | cut -d" " -f1) == $((PEERS + 1)) ]]'
    trace="$LAB_DIR/storm-$variant.trace"
    nb_start_trace "$trace" >/dev/null
    sleep 1
    ((pause)) && kill -STOP "$AGENT_PID"
    c0=$(cpu_ticks)
    t0=$(now_ms)
    in_a "$NBTRAFFIC" udp-sweep --from 10.101.0.1 --hosts "$PEERS" --port 9 --within-ms "$WITHIN" >&2 ||
        fail "the sweep could not send to every peer"
    if ((pause)); then
        t0=$(now_ms)
        kill -CONT "$AGENT_PID"
    fi
    drain=""
    while (($(now_ms) - t0 < (TIMEOUT_S - 2) * 1000)); do
        handled=$(grep -c '"event":"trigger"' "$trace" || true)
        if ((handled >= PEERS)); then
            drain=$(($(now_ms) - t0))
            break
        fi
        sleep 0.05
    done
    c1=$(cpu_ticks)
    cpu_ms=$(((c1 - c0) * 1000 / hz))
    [[ -n $drain ]] || drain="not drained ($handled handled)"
    detail=$(nb_cli status -d --json)
    woken=$(jq '[.peers[] | select(.wakes == 1)] | length' <<<"$detail")
    # The swept peers that did not wake exactly once, for the record.
    jq -c --arg b "$B_PUBKEY" '[.peers[] | select(.public_key != $b and .wakes != 1)
        | {allowed_ips, state, wakes, failures, last_error}] | .[:5][]' <<<"$detail" >&2
    read -r _ _ lost recovered < <(counts)
    # Every wake must end: Idle again (failed, backing off) after the connect timeout.
    stuck=""
    for ((i = 0; i < (TIMEOUT_S + 30) * 10; i++)); do
        read -r _ connecting _ _ < <(counts)
        ((connecting == 0)) && { stuck=0; break; }
        sleep 0.1
    done
    [[ -n $stuck ]] || stuck=$connecting
    kill "$NB_TRACE_PID" 2>/dev/null || true
    stop_agent >/dev/null
    results+=("RESULT storm variant=$variant peers=$PEERS drain_ms=${drain// /_} cpu_ms=$cpu_ms woken=$woken lost=$lost recovered=$recovered stuck=$stuck")
    rows+=("$(printf '| %-10s | %6s | %10s | %12s | %6s/%s | %6s | %9s | %7s |' "$variant" "$PEERS" \
        "$drain" "$cpu_ms" "$woken" "$PEERS" "$lost" "$recovered" "$stuck")")
    echo "${rows[-1]}" >&2
done
in_a ip link del "$WG_A" 2>/dev/null || true
lab_down

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "wake storm: $PEERS idle peers swept within $WITHIN ms, wireguard-go, kernel $(uname -r), $(nproc) cores ($cpu)"
echo "| variant    |  peers |   drain ms | agent CPU ms | woken once  | lost reports | recovered | Connecting after timeout |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in "${rows[@]}"; do echo "$r"; done
# For bench/run.sh.
printf '%s\n' "${results[@]}"
