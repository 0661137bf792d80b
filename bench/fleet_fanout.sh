#!/usr/bin/env bash
# Watch fan-out (issue 20): 12 lazy agents on wireguard-go with --map etcd on a 3-member
# etcd cluster (scripts/fleet-lab.sh); a load generator (fleet_load) registers 1,000 nodes
# at once, then moves all 1,000. Measured: from the first put until each agent has the
# change in its directory and, for the joins, applied to its map (status: the peer count).
#   sudo bench/fleet_fanout.sh [--build DIR] [--nodes N]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=$ROOT/build
NODES=1000
while (($#)); do
    case $1 in
        --build) BUILD=$2; shift 2 ;;
        --nodes) NODES=$2; shift 2 ;;
        *) echo "usage: bench/fleet_fanout.sh [--build DIR] [--nodes N]" >&2; exit 2 ;;
    esac
done
NBAGENT=$BUILD/cli/nbagent
LOAD=$BUILD/bench/fleet_load
[[ -x $NBAGENT && -x $LOAD ]] || { echo "build nbagent and fleet_load first ($BUILD)" >&2; exit 2; }
HOSTS=12
FLEET=nbfan
DIR=/run/nbagent-lab/$FLEET
trap 'bash "$ROOT/scripts/fleet-lab.sh" down $FLEET --dir $DIR >/dev/null 2>&1' EXIT
bash "$ROOT/scripts/fleet-lab.sh" up $FLEET --hosts $HOSTS --dir $DIR >/dev/null
# shellcheck source=/dev/null
source "$DIR/env.sh"
v() { local n="$1_$2"; echo "${!n}"; }
fcli() {
    local i=$1
    shift
    ip netns exec "$(v FLEET_NS "$i")" "$NBAGENT" "$@" -i "$(v FLEET_IF "$i")" --run-dir "$DIR/run-$i"
}
for ((i = 1; i <= HOSTS; i++)); do
    mkdir -p "$DIR/run-$i"
    ip netns exec "$(v FLEET_NS "$i")" env NB_CAPABILITY_CHECK=off "$NBAGENT" run -i "$(v FLEET_IF "$i")" \
        -c "$(v FLEET_CONF "$i")" --run-dir "$DIR/run-$i" --wg userspace --map etcd \
        --etcd-endpoints "$FLEET_ETCD" --mesh $FLEET >"$DIR/agent-$i.log" 2>&1 </dev/null &
done
for ((i = 1; i <= HOSTS; i++)); do
    until [[ $(fcli "$i" status --json 2>/dev/null | jq -r '.store.nodes // 0') == "$HOSTS" ]]; do sleep 0.1; done
done
echo "12 agents up, each with 11 peers from etcd"

# poll I JQ_CONDITION: prints the unix ms at which host I's status first met it.
poll() {
    until fcli "$1" status --json 2>/dev/null | jq -e "$2" >/dev/null; do sleep 0.02; done
    date +%s%3N
}
# round NAME JQ_CONDITION LOAD_ARGS...: one load, and when each agent had it.
round() {
    local name=$1 cond=$2 out t_first t_last i
    shift 2
    local pids=()
    for ((i = 1; i <= HOSTS; i++)); do poll "$i" "$cond" >"$DIR/seen-$i" & pids+=($!); done
    out=$(ip netns exec "$FLEET_HUB" "$LOAD" --endpoints "$FLEET_ETCD" --mesh $FLEET "$@")
    read -r _ t_first _ t_last _ rev _ <<<"$out"
    wait "${pids[@]}"
    echo "$name: $NODES puts in $((t_last - t_first)) ms (to revision $rev); each of the 12 agents had them (ms):"
    for ((i = 1; i <= HOSTS; i++)); do echo $(($(cat "$DIR/seen-$i") - t_first)); done | sort -n |
        awk -v d=$((t_last - t_first)) '{a[NR] = $1} END {
            printf "  after the first put: min %d, median %d, max %d\n", a[1], a[int((NR + 1) / 2)], a[NR]
            printf "  after the last put:  min %d, median %d, max %d\n", a[1] - d, a[int((NR + 1) / 2)] - d, a[NR] - d }'
}
total=$((HOSTS + NODES))
round "join (directory and map applied)" \
    ".store.nodes == $total and (.counts.idle + .counts.connecting + .counts.connected) == $((total - 1))" \
    --nodes "$NODES" --hold 0
rev_before=$(fcli 1 status --json | jq -r .store.revision)
round "move (directory)" ".store.revision >= $((rev_before + NODES))" --nodes "$NODES" --generation 1 --hold 0
ps -o rss= -p "$(pgrep -f "run-dir $DIR/run-1" | head -1)" | awk -v n="$total" '{printf "agent 1 RSS with %d nodes: %.1f MiB\n", n, $1 / 1024}'
