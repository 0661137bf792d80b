#!/usr/bin/env bash
# One agent per interface and network namespace (agent/engine/instance_lock.hpp):
#  - a second `run` on the lab's interface is refused, exit 1, naming the running PID,
#    whatever its --run-dir;
#  - in two named namespaces each with its own wg0, both agents run with the default
#    --run-dir (each gets /run/nbagent/netns/NAME) and each answers its own status.
# wireguard-go's UAPI socket (/run/wireguard/wg0.sock) is one path for every namespace,
# so each wg0's wireguard-go and agent share a private mount of /run/wireguard.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
require_wireguard_go "run a wg0 in two namespaces"
lab_up --peers 2
start_agent

rc=0
out=$(in_a "$NBAGENT" run -i "$WG_A" -c "$A_CONF" --run-dir "$LAB_DIR/other-run" 2>&1 </dev/null) || rc=$?
((rc == 1)) || fail "a second agent on $WG_A with another --run-dir: exit $rc, $out"
grep -qF "another nbagent is already running on $WG_A in this network namespace (pid $AGENT_PID;" <<<"$out" ||
    fail "the refusal does not name the running agent's PID $AGENT_PID: $out"
[[ ! -e $LAB_DIR/other-run/$WG_A.sock ]] || fail "the refused agent made a control socket"
nb_state_is "$B_PUBKEY" Idle || fail "the running agent was disturbed"
pass "a second agent with another --run-dir is refused: $(grep -o 'another nbagent.*' <<<"$out" | head -1)"
stop_agent

# Two namespaces, a wg0 in each.
base="nbl$$"
pids=()
NB_CLEANUP_CMDS+=("for p in \${pids[@]}; do kill -TERM \$p 2>/dev/null; done; sleep 1; ip netns del $base-1 2>/dev/null; ip netns del $base-2 2>/dev/null; rm -rf /run/nbagent/netns/$base-1 /run/nbagent/netns/$base-2")
for i in 1 2; do
    ns=$base-$i
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    conf=$LAB_DIR/$ns.conf
    printf '[Interface]\nPrivateKey = %s\nListenPort = %s\nAddress = 10.9.%s.1/24\n\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.9.%s.2/32\nEndpoint = 192.0.2.%s:51820\n' \
        "$(wg genkey)" $((52000 + i)) "$i" "$(wg genkey | wg pubkey)" "$i" "$i" >"$conf"
    mkdir -p /run/wireguard
    ip netns exec "$ns" unshare -m --propagation private bash -c \
        'mount -t tmpfs -o mode=0700 nb-wireguard /run/wireguard && exec "$0" run -i wg0 -c "$1" --wg userspace' \
        "$NBAGENT" "$conf" >"$LAB_DIR/$ns.log" 2>&1 </dev/null &
    pids+=($!)
    NB_SHOW_ON_FAILURE+=("$LAB_DIR/$ns.log")
done
for i in 1 2; do
    ns=$base-$i
    wait_for 20 "the agent on wg0 in $ns" ip netns exec "$ns" "$NBAGENT" status -i wg0
    [[ -S /run/nbagent/netns/$ns/wg0.sock ]] || fail "no control socket at /run/nbagent/netns/$ns/wg0.sock"
    port=$(ip netns exec "$ns" "$NBAGENT" status -i wg0 --json | jq .listen_port)
    ((port == 52000 + i)) || fail "status in $ns answers for another wg0 (listen port $port)"
done
for p in "${pids[@]}"; do kill -0 "$p" || fail "an agent in the two namespaces exited"; done
pass "a wg0 in each of two namespaces: both agents run, each answers its own status"
