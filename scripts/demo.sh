#!/usr/bin/env bash
# A one-minute tour on a fresh Debian 12 machine (as root): a lab with 1000 WireGuard
# peers, nbagent keeping them all idle, and one ping waking the real remote peer.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NBAGENT="$ROOT/build/cli/nbagent"
LAB=demo
LAB_DIR=/run/nbagent-lab/$LAB
AGENT_PID=""
TRACE_PID=""

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cleanup() {
    set +e
    say "tearing down"
    [[ -n $TRACE_PID ]] && kill -TERM "$TRACE_PID" 2>/dev/null
    if [[ -n $AGENT_PID ]]; then
        kill -TERM "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null
    fi
    bash "$ROOT/scripts/lab.sh" down "$LAB"
}

[[ $(id -u) -eq 0 ]] || {
    echo "demo.sh: run as root: it builds network namespaces and loads BPF programs" >&2
    exit 1
}

say "setup: packages and build"
bash "$ROOT/scripts/setup.sh"

trap cleanup EXIT
say "lab: namespaces demo-a (agent) and demo-b (remote wireguard-go), 1000 peers"
bash "$ROOT/scripts/lab.sh" up "$LAB" --peers 1000
# shellcheck source=/dev/null
source "$LAB_DIR/env.sh"
RUN_DIR="$LAB_DIR/run"
nb() { ip netns exec "$NS_A" "$NBAGENT" "$@" -i "$WG_A" --run-dir "$RUN_DIR"; }

say "starting: nbagent run -i $WG_A -c $A_CONF (log $LAB_DIR/agent.log)"
ip netns exec "$NS_A" "$NBAGENT" run -i "$WG_A" -c "$A_CONF" --run-dir "$RUN_DIR" \
    >"$LAB_DIR/agent.log" 2>&1 </dev/null &
AGENT_PID=$!
for ((i = 0; i < 300; i++)); do
    nb status >/dev/null 2>&1 && break
    kill -0 "$AGENT_PID" 2>/dev/null || {
        cat "$LAB_DIR/agent.log"
        exit 1
    }
    sleep 0.1
done

say "nbagent status: every peer Idle, none has an endpoint in WireGuard"
nb status

ip netns exec "$NS_A" "$NBAGENT" trace peers -i "$WG_A" --run-dir "$RUN_DIR" \
    >"$LAB_DIR/trace.log" 2>&1 </dev/null &
TRACE_PID=$!
sleep 1

say "ping -c 3 $REMOTE_V4 from $NS_A: the first packet wakes the remote peer"
ip netns exec "$NS_A" ping -c 3 "$REMOTE_V4"

say "nbagent status -d, the remote peer ($B_PUBKEY)"
nb status -d --json | jq --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k)'

say "nbagent trace peers: what happened"
cat "$LAB_DIR/trace.log"

say "nbagent status"
nb status
