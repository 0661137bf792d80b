#!/usr/bin/env bash
# A fleet on a real etcd cluster (issue 20): 3 etcd members (TLS, client certificates
# required) and 12 lazy agents on
# wireguard-go, each in a namespace of its own on one bridge (scripts/fleet-lab.sh),
# every peer from the store (--map etcd, Connector = etcd). Random pairs talk, every
# first packet delivered; a host moves to a new underlay address and the others reach it
# with no config edit; a 13th joins by registering; one member dies (nothing to see), all
# die (cached endpoints still wake, status says down), all come back (the agents follow
# with new streams, no range read: counted).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
command -v etcd >/dev/null || skip "etcd not installed (scripts/setup.sh installs etcd-server)"
command -v etcdctl >/dev/null || skip "etcdctl not installed (etcd-client)"

HOSTS=13 # 12 at the start, the 13th joins
RUNNING=12
FLEET=nbf$$
FLEET_LAB="$NB_REPO_ROOT/scripts/fleet-lab.sh"
FLEET_DIR=/run/nbagent-lab/$FLEET
NB_CLEANUP_CMDS+=("bash '$FLEET_LAB' down $FLEET --dir '$FLEET_DIR' >/dev/null 2>&1")
bash "$FLEET_LAB" up "$FLEET" --hosts $HOSTS --members 3 --dir "$FLEET_DIR" --tls
# shellcheck source=/dev/null
source "$FLEET_DIR/env.sh" # FLEET_HUB FLEET_ETCD FLEET_NET FLEET_OVERLAY FLEET_NS_I ...
: "${FLEET_HUB:?}" "${FLEET_ETCD:?}" "${FLEET_CA:?}" "${FLEET_CERT:?}" "${FLEET_KEY:?}"

v() { local n="$1_$2"; echo "${!n}"; } # v NS 3 -> $FLEET_NS_3
fcli() {                               # fcli I ARGS...: nbagent ARGS against host I's agent
    local i=$1
    shift
    ip netns exec "$(v FLEET_NS "$i")" "$NBAGENT" "$@" -i "$(v FLEET_IF "$i")" --run-dir "$FLEET_DIR/run-$i"
}
store() { fcli "$1" status --json | jq -r ".store.$2"; } # store I FIELD
etcdctl_hub() {
    ip netns exec "$FLEET_HUB" etcdctl --endpoints "$FLEET_ETCD" --cacert "$FLEET_CA" \
        --cert "$FLEET_CERT" --key "$FLEET_KEY" "$@"
}

start_host() {
    local i=$1
    mkdir -p "$FLEET_DIR/run-$i"
    ip netns exec "$(v FLEET_NS "$i")" env NB_CAPABILITY_CHECK=off "$NBAGENT" run \
        -i "$(v FLEET_IF "$i")" -c "$(v FLEET_CONF "$i")" --run-dir "$FLEET_DIR/run-$i" \
        --wg userspace --map etcd --etcd-endpoints "$FLEET_ETCD" --mesh "$FLEET" \
        --etcd-ca "$FLEET_CA" --etcd-cert "$FLEET_CERT" --etcd-key "$FLEET_KEY" \
        --etcd-lease-ttl 6s >"$FLEET_DIR/agent-$i.log" 2>&1 </dev/null &
    NB_BG_PIDS+=($!)
    NB_SHOW_ON_FAILURE+=("$FLEET_DIR/agent-$i.log")
}
# sees I N: host I's agent has the store up and N peers.
sees() {
    [[ $(fcli "$1" status --json | jq -r '"\(.store.state) \(.counts.idle + .counts.connecting + .counts.connected)"') == "up $2" ]]
}
# ping_first I J: host I's first packet to host J arrives (one ping, no retry).
ping_first() {
    ip netns exec "$(v FLEET_NS "$1")" ping -c 1 -W 5 "$FLEET_OVERLAY.$2" >/dev/null ||
        fail "host $1 -> host $2: the first ping was lost"
}

for ((i = 1; i <= RUNNING; i++)); do start_host "$i"; done
for ((i = 1; i <= RUNNING; i++)); do wait_for 60 "host $i to see the store and 11 peers" sees "$i" 11; done
pass "12 agents registered over TLS with a client certificate; each has the other 11 from etcd, all Idle"
# Without a client certificate the members refuse it: the agent runs on its file's peers
# (none here), says why, and shows the store down; nothing of it reaches etcd.
mkdir -p "$FLEET_DIR/run-13"
rc=0
ip netns exec "$(v FLEET_NS 13)" env NB_CAPABILITY_CHECK=off timeout 10 "$NBAGENT" run \
    -i "$(v FLEET_IF 13)" -c "$(v FLEET_CONF 13)" --run-dir "$FLEET_DIR/run-13" --wg userspace \
    --map etcd --etcd-endpoints "$FLEET_ETCD" --etcd-ca "$FLEET_CA" >"$FLEET_DIR/nocert.log" 2>&1 || rc=$?
((rc == 124)) || fail "the agent without a client certificate exited $rc: $(tail -n 3 "$FLEET_DIR/nocert.log")"
grep -q "client certificate" "$FLEET_DIR/nocert.log" ||
    fail "the agent without a client certificate did not say why etcd refused it: $(grep etcd "$FLEET_DIR/nocert.log" | tail -n 2)"
[[ $(etcdctl_hub get --keys-only --prefix "/nbagent/$FLEET/nodes/" | grep -c .) == 12 ]] ||
    fail "a node without a client certificate got into etcd"
pass "without a client certificate: refused by etcd, named in the log, kept running on the file's peers"

# --- random pairs, every first packet delivered. Host 5 stays out: the move below needs
# its sessions with hosts 1 and 2 to start one known way each.
pairs=0
for ((k = 0; k < 24; k++)); do
    a=$((RANDOM % RUNNING + 1)) b=$((RANDOM % RUNNING + 1))
    ((a == b || a == 5 || b == 5)) && continue
    ping_first "$a" "$b"
    pairs=$((pairs + 1))
done
pass "$pairs random pairs: every first ping delivered"

# --- host 5 moves to a new underlay address: the others follow with no config edit
# A Connected peer must follow without a new wake, however its session began: host 1
# wakes host 5 with a packet (the agent set the endpoint), host 5 wakes host 2 (the
# remote's handshake: WireGuard has the endpoint, the agent shows none).
ping_first 1 5
ping_first 5 2
# Host N's view of host 5 (status -d --json of that one peer).
peer_5() { fcli "$1" status --json -d --peer "$FLEET_KEY_5"; }
# "state|endpoint|wakes": '|' because the endpoint may be empty.
state_of_5() { peer_5 "$1" | jq -r '.peers[0] | "\(.state)|\(.endpoint)|\(.wakes)"'; }
# Host 2's agent learns of the remote's handshake from its ingress program, a moment
# after the ping's reply.
connected_to_5() { [[ $(state_of_5 "$1") == Connected\|* ]]; }
declare -A wakes_before
for i in 1 2; do
    wait_for 10 "host $i's peer host 5 to be Connected after a ping" connected_to_5 "$i"
    IFS='|' read -r _ _ wakes_before[$i] <<<"$(state_of_5 "$i")"
done
ip -n "$(v FLEET_NS 5)" addr del "$FLEET_NET.5/24" dev eth0
ip -n "$(v FLEET_NS 5)" addr add "$FLEET_NET.105/24" dev eth0
key5_hex=$(base64 -d <<<"$FLEET_KEY_5" | od -An -tx1 | tr -d ' \n')
published() { etcdctl_hub get --print-value-only "/nbagent/$FLEET/nodes/$key5_hex" | grep -q "$FLEET_NET.105:51820"; }
wait_for 30 "host 5's new endpoint in etcd" published
# Where each host's next wake of host 5 goes (the directory), and, for a host already
# Connected to it, where WireGuard sends (moved without a wake).
follows() {
    peer_5 "$1" |
        jq -e --arg e "$FLEET_NET.105:51820" '.peers[0] | .wake_endpoint == $e and (.state != "Connected" or .endpoint == $e)' >/dev/null
}
moved_with_5() { [[ $(state_of_5 "$1") == "Connected|$FLEET_NET.105:51820|${wakes_before[$1]}" ]]; }
for i in 1 2; do
    wait_for 30 "host $i's Connected peer host 5 to move with it, without a wake" moved_with_5 "$i"
    grep -q "moved to $FLEET_NET.105:51820; its session follows" "$FLEET_DIR/agent-$i.log" ||
        fail "host $i did not log host 5's move"
done
pass "hosts 1 (it woke host 5) and 2 (woken by host 5), Connected to host 5, follow it to $FLEET_NET.105 with no new wake"
for ((i = 1; i <= RUNNING; i++)); do
    ((i == 5)) && continue
    wait_for 30 "host $i to follow host 5 to its new address" follows "$i"
    ping_first "$i" 5
done
pass "host 5 moved to $FLEET_NET.105: all 11 others reached it, no config edited"

# --- a 13th host joins by registering
join_start=$(date +%s%N)
start_host 13
registered() { etcdctl_hub get --keys-only --prefix "/nbagent/$FLEET/nodes/" | grep -c . | grep -qx 13; }
wait_for 30 "host 13's entry in etcd" registered
registered_at=$(date +%s%N)
for ((i = 1; i <= RUNNING; i++)); do wait_for 30 "host $i to have host 13" sees "$i" 12; done
all_at=$(date +%s%N)
for i in 1 7 12; do ping_first "$i" 13; done
pass "host 13 joined: registered $(((registered_at - join_start) / 1000000)) ms after its start; all 12 others had it within $(((all_at - registered_at) / 1000000)) ms of that (polled; the bench measures it)"
RUNNING=13

# --- one member dies: nothing to see
bash "$FLEET_LAB" member "$FLEET" 1 kill --dir "$FLEET_DIR"
for ((k = 0; k < 12; k++)); do
    a=$((RANDOM % RUNNING + 1)) b=$((RANDOM % RUNNING + 1))
    ((a == b)) || ping_first "$a" "$b"
done
for ((i = 1; i <= RUNNING; i++)); do [[ $(store "$i" state) == up ]] || fail "host $i shows the store $(store "$i" state) with 2 of 3 members up"; done
pass "one etcd member killed: every wake worked, every agent shows the store up"

# --- all die: cached endpoints still wake, status says down
bash "$FLEET_LAB" member "$FLEET" 2 kill --dir "$FLEET_DIR"
bash "$FLEET_LAB" member "$FLEET" 3 kill --dir "$FLEET_DIR"
for ((i = 1; i <= RUNNING; i++)); do wait_for 60 "host $i to show the store down" eval "[[ \$(store $i state) == down ]]"; done
declare -A ranges=() streams=()
for ((i = 1; i <= RUNNING; i++)); do
    ranges[$i]=$(store "$i" range_reads)
    streams[$i]=$(store "$i" streams)
done
for ((k = 0; k < 12; k++)); do
    a=$((RANDOM % RUNNING + 1)) b=$((RANDOM % RUNNING + 1))
    ((a == b)) || ping_first "$a" "$b"
done
pass "all etcd members killed: status says down on all 13, wakes from cached endpoints all worked"

# --- back: new streams, no range read
for m in 1 2 3; do bash "$FLEET_LAB" member "$FLEET" "$m" start --dir "$FLEET_DIR"; done
for ((i = 1; i <= RUNNING; i++)); do wait_for 60 "host $i to see the store again" sees "$i" 12; done
total_streams=0
for ((i = 1; i <= RUNNING; i++)); do
    [[ $(store "$i" range_reads) == "${ranges[$i]}" ]] ||
        fail "host $i re-read the store ($(store "$i" range_reads) range reads, ${ranges[$i]} before)"
    s=$(($(store "$i" streams) - streams[$i]))
    total_streams=$((total_streams + s))
done
pass "the store came back: 13 agents followed with $total_streams new watch streams and 0 range reads"
for ((k = 0; k < 6; k++)); do
    a=$((RANDOM % RUNNING + 1)) b=$((RANDOM % RUNNING + 1))
    ((a == b)) || ping_first "$a" "$b"
done
pass "wakes after the store came back all worked"
