#!/usr/bin/env bash
# `run` as a user that is not root, with only the capabilities docs/config.md documents
# (as a unit's User= and AmbientCapabilities= give them), on real wireguard-go or, in the
# kernel matrix (NB_TEST_WG=kernel), kernel WireGuard: the BPF trigger loads (no
# fallback), a ping wakes B, and SIGTERM stops it cleanly.
# What a service provides is made here by hand, in a private mount namespace: a run
# directory the user owns, a memlock limit for kernels before 5.11 (the unit's
# LimitMEMLOCK=infinity), and for wireguard-go /run/wireguard for the daemon it starts
# and a /dev/net/tun it may open (Debian's is 0666; some containers make it 0600).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 2

caps=+net_admin,+net_raw,+bpf,+perfmon
(($(cat /proc/sys/kernel/cap_last_cap) >= 39)) || caps=+net_admin,+net_raw,+sys_admin
user_dir=$(mktemp -d /tmp/nb-nonroot.XXXXXX)
NB_CLEANUP_CMDS+=("rm -rf '$user_dir'")
chmod 755 "$user_dir"
run_dir=$user_dir/run
mkdir -m 700 "$run_dir"
cp "$A_CONF" "$user_dir/a.conf"
chown -R 65534:65534 "$run_dir" "$user_dir/a.conf"
# shellcheck disable=SC2016 # expanded by the inner bash
ip netns exec "$NS_A" unshare -m --propagation private bash -c '
    set -e
    if [[ $5 == userspace ]]; then
        mkdir -p /run/wireguard
        mount -t tmpfs -o mode=0755,uid=65534 nb-wireguard /run/wireguard
        mount -t tmpfs -o mode=0755 nb-tun /dev/net
        mknod -m 0666 /dev/net/tun c 10 200
    fi
    mkdir -p /run/nbagent
    mount -t tmpfs -o mode=0755,uid=65534 nb-locks /run/nbagent
    ulimit -l unlimited 2>/dev/null || true  # where allowed: 5.10 needs it, memcg kernels do not
    exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="$4" --ambient-caps="$4" \
        "$0" run -i "$1" -c "$2" --run-dir "$3" --wg "$5"' \
    "$NBAGENT" "$WG_A" "$user_dir/a.conf" "$run_dir" "$caps" "${NB_TEST_WG:-userspace}" \
    >"$LAB_DIR/nonroot.log" 2>&1 </dev/null &
AGENT_PID=$!
AGENT_LOG=$LAB_DIR/nonroot.log
user_cli() { ip netns exec "$NS_A" "$NBAGENT" "$@" -i "$WG_A" --run-dir "$run_dir"; }
wait_for 20 "the agent as uid 65534 answers status" user_cli status
agent=$(pgrep -f "nbagent run -i $WG_A" | head -1)
uid=$(awk '/^Uid:/ {print $2}' "/proc/$agent/status")
((uid == 65534)) || fail "the agent runs as uid $uid"
[[ $(user_cli status --json | jq -r .trigger) == bpf ]] ||
    fail "the BPF trigger did not load as uid 65534 with $caps: $(grep -m1 'not usable' "$AGENT_LOG")"
pass "as uid 65534 with ${caps//+/} ($(uname -r), WireGuard ${NB_TEST_WG:-userspace}): the agent runs, trigger bpf"
in_a ping -c 1 -W 5 "$REMOTE_V4" >/dev/null || fail "the first ping to B was lost"
wait_for 5 "B Connected" eval "[[ \$(user_cli status --json --peer '$B_PUBKEY' | jq -r '.peers[0].state') == Connected ]]"
pass "a ping woke B"
kill -TERM "$AGENT_PID"
rc=0
wait "$AGENT_PID" || rc=$?
AGENT_PID=""
((rc == 0)) || fail "the agent exited $rc"
grep -q "stopped" "$AGENT_LOG" || fail "the agent did not stop cleanly"
pass "SIGTERM: stopped cleanly (exit 0)"
