#!/usr/bin/env bash
# Which capabilities `run` needs on this kernel (docs/config.md, "Running without root"):
# the agent as uid 65534 with the documented set, then with each one of them left out
# (NB_CAPABILITY_CHECK=off lets it try). The set is the minimum when the whole set works
# (trigger bpf, a ping wakes B) and every smaller one fails at some step. Each run is a
# line of the table this prints. Kernel WireGuard only: wireguard-go needs the private
# /run/wireguard and /dev/net/tun of nonroot.sh besides.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
require_kernel_wireguard
lab_up --peers 2

all=(net_admin net_raw bpf perfmon)
(($(cat /proc/sys/kernel/cap_last_cap) >= 39)) || all=(net_admin net_raw sys_admin)
user_dir=$(mktemp -d /tmp/nb-caps.XXXXXX)
NB_CLEANUP_CMDS+=("rm -rf '$user_dir'")
chmod 755 "$user_dir"
cp "$A_CONF" "$user_dir/a.conf"
chown 65534:65534 "$user_dir/a.conf"

# try CAPS: runs the agent with CAPS (comma list, +name), prints what it got to.
try() {
    local caps=$1 run_dir log pid result=works
    run_dir=$(mktemp -d "$user_dir/run.XXXXXX")
    chown 65534:65534 "$run_dir"
    chmod 700 "$run_dir"
    log=$run_dir.log
    # shellcheck disable=SC2016 # expanded by the inner bash
    ip netns exec "$NS_A" unshare -m --propagation private bash -c '
        mkdir -p /run/nbagent && mount -t tmpfs -o mode=0755,uid=65534 nb-locks /run/nbagent
        ulimit -l unlimited 2>/dev/null || true
        exec setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps="$4" --ambient-caps="$4" \
            env NB_CAPABILITY_CHECK=off "$0" run -i "$1" -c "$2" --run-dir "$3" --wg kernel' \
        "$NBAGENT" "$WG_A" "$user_dir/a.conf" "$run_dir" "$caps" >"$log" 2>&1 </dev/null &
    pid=$!
    ucli() { ip netns exec "$NS_A" "$NBAGENT" "$@" -i "$WG_A" --run-dir "$run_dir"; }
    local t=0
    while ! ucli status >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null || ((t++ > 100)); then result="no start: $(grep -m1 -E '\[(error|critical)\]' "$log" | sed 's/^[^]]*] //' | cut -c1-90)"; break; fi
        sleep 0.1
    done
    # The BPF engine refused first (and the UDP fallback then may not start either):
    # that refusal is the capability's doing.
    if grep -q 'BPF trigger engine is not usable' "$log"; then
        result="no BPF: $(grep -m1 'not usable' "$log" | sed 's/^.*not usable (\(.*\)): falling.*$/\1/' | cut -c1-110)"
    fi
    if [[ $result == works ]] && ! in_a ping -c 1 -W 5 "$REMOTE_V4" >/dev/null; then
        result="no wake: $(grep -m1 -E '\[(error|warning)\]' "$log" | sed 's/^[^]]*] //' | cut -c1-90)"
    fi
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # What a failed start left: the interface, for the next try to make anew.
    in_a ip link del "$WG_A" 2>/dev/null
    echo "$result"
}

echo "| kernel | capabilities | result |"
echo "|---|---|---|"
full=$(printf '+%s,' "${all[@]}")
full=${full%,}
result=$(try "$full")
echo "| $(uname -r) | ${all[*]} | $result |"
[[ $result == works ]] || fail "with the whole documented set: $result"
for drop in "${all[@]}"; do
    rest=$(printf '+%s,' "${all[@]/$drop/}" | sed 's/+,//g; s/,$//')
    result=$(try "$rest")
    echo "| $(uname -r) | without $drop | $result |"
    [[ $result != works ]] || fail "it works without $drop: the documented set is not the minimum"
done
pass "on $(uname -r) the minimum is ${all[*]}: each one left out breaks a step"
