#!/usr/bin/env bash
# The scale one machine cannot hold (issue 20): 10,000 nodes registered by a load
# generator (fleet_load) and one agent watching them (--etcd-endpoints, --map file: the
# directory and its connector, not 10,000 WireGuard peers). Measured: the agent's CPU time
# and RSS while they arrive, and its catch-up after a 60 s disconnect during which all
# 10,000 moved (its underlay link down; the store compacts nothing, so the watch resumes).
#   sudo bench/fleet_scale.sh [--build DIR] [--nodes N] [--away SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
NODES=10000
AWAY=60
while (($#)); do
    case $1 in
        --build) BUILD=$2; shift 2 ;;
        --nodes) NODES=$2; shift 2 ;;
        --away) AWAY=$2; shift 2 ;;
        *) echo "usage: bench/fleet_scale.sh [--build DIR] [--nodes N] [--away SECONDS]" >&2; exit 2 ;;
    esac
done
NBAGENT=$BUILD/cli/nbagent
LOAD=$BUILD/bench/fleet_load
[[ -x $NBAGENT && -x $LOAD ]] || { echo "build nbagent and fleet_load first ($BUILD)" >&2; exit 2; }
FLEET=nbscale
DIR=/run/nbagent-lab/$FLEET
trap 'bash "$ROOT/scripts/fleet-lab.sh" down $FLEET --dir $DIR >/dev/null 2>&1' EXIT
bash "$ROOT/scripts/fleet-lab.sh" up $FLEET --hosts 1 --dir $DIR >/dev/null
# shellcheck source=/dev/null
source "$DIR/env.sh"
: "${FLEET_NS_1:?}" "${FLEET_IF_1:?}" "${FLEET_CONF_1:?}" "${FLEET_HUB:?}" "${FLEET_ETCD:?}"
cli() { ip netns exec "$FLEET_NS_1" "$NBAGENT" "$@" -i "$FLEET_IF_1" --run-dir "$DIR/run"; }
mkdir -p "$DIR/run"
ip netns exec "$FLEET_NS_1" env NB_CAPABILITY_CHECK=off "$NBAGENT" run -i "$FLEET_IF_1" -c "$FLEET_CONF_1" \
    --run-dir "$DIR/run" --wg userspace --etcd-endpoints "$FLEET_ETCD" --mesh $FLEET \
    >"$DIR/agent.log" 2>&1 </dev/null &
until [[ $(cli status --json 2>/dev/null | jq -r '.store.nodes // 0') == 1 ]]; do sleep 0.1; done
pid=$(pgrep -f "run-dir $DIR/run" | head -1)
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; } # utime + stime, in clock ticks
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
hz=$(getconf CLK_TCK)
rss0=$(rss) cpu0=$(cpu)

out=$(ip netns exec "$FLEET_HUB" "$LOAD" --endpoints "$FLEET_ETCD" --mesh $FLEET --nodes "$NODES" --threads 16)
read -r _ t_first _ t_last _ rev _ <<<"$out"
until (($(cli status --json | jq -r .store.revision) >= rev)); do sleep 0.05; done
t_seen=$(date +%s%3N)
rss1=$(rss) cpu1=$(cpu)
echo "$NODES registrations in $((t_last - t_first)) ms; the agent had all $((t_seen - t_last)) ms after the last"
awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" -v r0="$rss0" -v r1="$rss1" -v n="$NODES" 'BEGIN {
    printf "  agent CPU while they arrived: %.2f s; RSS %.1f -> %.1f MiB (%.0f bytes per node)\n",
        (b - a) / hz, r0 / 1024, r1 / 1024, (r1 - r0) * 1024 / n }'

# Away: the agent's underlay down while every node moves, then back.
ip -n "$FLEET_NS_1" link set eth0 down
t_down=$(date +%s)
out=$(ip netns exec "$FLEET_HUB" "$LOAD" --endpoints "$FLEET_ETCD" --mesh $FLEET --nodes "$NODES" --threads 16 --generation 1)
read -r _ _ _ _ _ rev2 _ <<<"$out"
sleep $((AWAY - ($(date +%s) - t_down) > 0 ? AWAY - ($(date +%s) - t_down) : 0))
before=$(cli status --json | jq -c '.store | {state, revision, range_reads, streams, requests}')
cpu2=$(cpu)
ip -n "$FLEET_NS_1" link set eth0 up
t_up=$(date +%s%3N)
until (($(cli status --json | jq -r .store.revision) >= rev2)); do sleep 0.05; done
t_caught=$(date +%s%3N)
after=$(cli status --json | jq -c '.store | {state, revision, range_reads, streams, requests}')
cpu3=$(cpu)
echo "away $(($(date +%s) - t_down - (t_caught - t_up) / 1000)) s while all $NODES moved; caught up $((t_caught - t_up)) ms after the link came back"
echo "  store before: $before"
echo "  store after:  $after"
awk -v a="$cpu2" -v b="$cpu3" -v hz="$hz" 'BEGIN { printf "  agent CPU for the catch-up: %.2f s\n", (b - a) / hz }'
echo "  agent RSS: $(($(rss) / 1024)) MiB"
