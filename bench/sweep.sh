#!/usr/bin/env bash
# Hostile sweep: a local process sends to every address of N idle peers, round after
# round at full speed, for D seconds (the peers' endpoints answer nobody, so every wake
# fails and backs off). Meanwhile a real peer (B) is made idle and pinged now and then.
#
#   bench/sweep.sh [--peers N] [--seconds D] [--round-ms T] [--wg userspace|kernel]
#                  [--wake-rate R]
#   (as root)
#
# Prints: the agent's CPU time over the sweep (and per second), its RSS sampled every
# 5 s (first and last sample), the most wakes any swept peer had (per-peer backoff: at
# most ~log2(D / --connect-backoff) + 1), and B's first-ping latency during the sweep
# against its p99 when quiet (target: within 10x). wireguard-go holds at most 65,000
# peers; 100k need kernel WireGuard (--wg kernel: the qemu matrix, see BENCHMARKS.md).
set -euo pipefail
PEERS=10000
SECONDS_TOTAL=60
ROUND_MS=200
WG=userspace
WAKE_RATE=500 # the agent's default
while (($#)); do
    case $1 in
        --peers) PEERS=$2; shift 2 ;;
        --seconds) SECONDS_TOTAL=$2; shift 2 ;;
        --round-ms) ROUND_MS=$2; shift 2 ;;
        --wg) WG=$2; shift 2 ;;
        --wake-rate) WAKE_RATE=$2; shift 2 ;;
        *) echo "usage: bench/sweep.sh [--peers N] [--seconds D] [--round-ms T] [--wg userspace|kernel] [--wake-rate R]" >&2; exit 2 ;;
    esac
done
case $WG in
    userspace) max=65000 ;;
    kernel) max=1048575 ;;
    *) echo "--wg: userspace or kernel, not '$WG'" >&2; exit 2 ;;
esac
[[ $PEERS =~ ^[0-9]+$ && $PEERS -ge 1 && $PEERS -le $max ]] || { echo "--peers: 1..$max ($WG WireGuard)" >&2; exit 2; }
# shellcheck source=lab_bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/lab_bench.sh"
export NB_AGENT_START_TIMEOUT=600 NB_AGENT_STOP_TIMEOUT=600

cpu_ticks() { awk '{print $14 + $15}' "/proc/$AGENT_PID/stat"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$AGENT_PID/status"; }
state_of() { nb_cli status -d --json | jq -r --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k) | .state'; }
# `peer idle` answers once B is Idle in WireGuard too, so no status poll is needed: a
# full status of 65k peers is megabytes of JSON, and polling it would load the machine
# the benchmark measures.
# The pause first: WireGuard drops an initiation that comes within 20 ms of the last one
# it took from that peer (flood protection), so an idle and a wake right after a
# handshake would measure WireGuard's 5 s retry instead of the agent.
b_idle_then_ping() {
    local err
    sleep 0.1
    err=$(nb_cli peer idle "$B_PUBKEY" 2>&1 >/dev/null) || fail "peer idle B: $err"
    # The agent answers `peer idle` between two pieces of work, often just after a long
    # one: a ping sent at once would miss the stalls. A random pause samples them fairly.
    sleep "$(printf '0.%03d' $((RANDOM % 1000)))"
    ping_ms
}

lab_up --peers $((PEERS + 1)) --wg "$WG" >/dev/null
route_dummy_endpoints_via_b
hz=$(getconf CLK_TCK)
start_agent --trigger bpf --connect-timeout 5s --wake-rate "$WAKE_RATE" >/dev/null
wait_for 600 "all peers Idle" eval '[[ $(idle_count) == $((PEERS + 1)) ]]'

nb_cli peer idle "$B_PUBKEY" >/dev/null
[[ $(state_of) == Idle ]] || fail "B is not Idle after peer idle"
# wireguard-go is still busy with the new peers for a while (a shared secret each):
# the quiet figures start once B answers a first ping.
warm() { (b_idle_then_ping) >/dev/null 2>&1; }
wait_for 60 "B's first answered ping" warm
quiet=()
for _ in $(seq 20); do quiet+=("$(b_idle_then_ping)"); done
quiet_p99=$(p99 "${quiet[@]}")

c0=$(cpu_ticks)
rss0=$(rss_kb)
t0=$(now_ms)
(
    while (($(now_ms) - t0 < SECONDS_TOTAL * 1000)); do
        ip netns exec "$NS_A" "$NBTRAFFIC" udp-sweep --from 10.101.0.1 --hosts "$PEERS" --port 9 \
            --within-ms "$ROUND_MS" >/dev/null 2>&1 || true
    done
) &
sweeper=$!
NB_BG_PIDS+=("$sweeper")
rss=() during=()
next_sample=0
while kill -0 "$sweeper" 2>/dev/null; do
    el=$(($(now_ms) - t0))
    if ((el >= next_sample)); then
        rss+=("$(rss_kb)")
        next_sample=$((next_sample + 5000))
    fi
    # B's wakes while the sweep runs, from the 10th second on.
    # A wake that fails is a result, not the end of the run: its reason goes to stderr.
    if ((el > 10000 && ${#during[@]} < 10)); then
        if ms=$(b_idle_then_ping); then
            during+=("$ms")
        else
            echo "B during the sweep: $ms" >&2
            echo "B then: $(nb_peer_json "$B_PUBKEY" | jq -c '{state, failures, last_error}')" >&2
            during+=(lost)
        fi
    fi
    sleep 0.5
done
c1=$(cpu_ticks)
elapsed=$(($(now_ms) - t0))
cpu_ms=$(((c1 - c0) * 1000 / hz))
detail=$(nb_cli status -d --json)
max_wakes=$(jq --arg b "$B_PUBKEY" '[.peers[] | select(.public_key != $b) | .wakes] | max' <<<"$detail")
woken=$(jq --arg b "$B_PUBKEY" '[.peers[] | select(.public_key != $b and .wakes > 0)] | length' <<<"$detail")
lost=$(printf '%s\n' "${during[@]}" | grep -c lost || true)
worst=$(printf '%s\n' "${during[@]}" | grep -v lost | sort -g | tail -n1)
counters=$(jq -c '{ring_reports, lost_reports, lost_recovered, wakes_deferred, wakes_shed}' <<<"$detail")
# What the agent warned about, by kind (the text up to the first colon or digit).
warnings=$(grep -F '[warning]' "$AGENT_LOG" | sed -E 's/^\[[^]]*\] \[warning\] //; s/[:0-9].*//' | sort | uniq -c | sort -rn | sed -n '1,5p')
stop_agent >/dev/null
lab_down

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
echo
echo "hostile sweep: $PEERS idle peers, a sweep every $ROUND_MS ms for ${SECONDS_TOTAL} s, $WG WireGuard, --wake-rate $WAKE_RATE, kernel $(uname -r), $(nproc) cores ($cpu)"
echo "| agent CPU ms (per s) | RSS KiB at start, first sample, last sample | peers woken | most wakes of one peer | B first ping quiet p99 ms | B first ping during the sweep, worst of ${#during[@]} ms | not answered in 10 s | ratio |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
ratio=$(awk -v w="${worst:-0}" -v q="$quiet_p99" 'BEGIN {printf "%.1f", w / q}')
echo "| $cpu_ms ($((cpu_ms * 1000 / elapsed))) | $rss0, ${rss[0]}, ${rss[-1]} | $woken | $max_wakes | $quiet_p99 | ${worst:--} | $lost | $ratio |"
echo "agent counters: $counters"
# Flat means: after the first seconds of the sweep, the samples stop growing.
echo "RSS KiB every 5 s of the sweep: ${rss[*]}"
echo "agent warnings (count, kind):"
echo "${warnings:-  none}"
echo "RESULT sweep wg=$WG wake_rate=$WAKE_RATE peers=$PEERS seconds=$SECONDS_TOTAL cpu_ms=$cpu_ms rss_first=${rss[0]} rss_last=${rss[-1]} max_wakes=$max_wakes quiet_p99=$quiet_p99 worst=$worst lost=$lost ratio=$ratio"
