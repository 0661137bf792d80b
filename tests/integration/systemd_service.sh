#!/usr/bin/env bash
# The Debian package under a real systemd (PID 1), as an operator runs it: install the
# .deb, `systemctl start nbagent@wg0` against /etc/wireguard/wg0.conf, wake a peer,
# `systemctl reload` with a changed map, a crash restarted by Restart=on-failure,
# `systemctl stop` giving every endpoint back, and `systemd-analyze security` of the
# live unit. The kernel matrix runs it in a VM booted with systemd as PID 1
# (run-matrix.sh's "systemd " prefix, run-vm.sh --init systemd); elsewhere it skips.
# The agent runs in the VM's own network namespace, where systemd starts it; the peer
# B is kernel WireGuard in a namespace of its own, on a veth pair.
# NB_DEB: the package (default: build-deb/nbagent_*.deb, scripts/package.sh's output).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

if [[ $(cat /proc/1/comm 2>/dev/null) != systemd || ! -d /run/systemd/system ]]; then
    # A property of the machine, like a kernel without WireGuard: the matrix VM has it.
    echo "SKIP: systemd is not PID 1 here (runs in the qemu matrix: run-vm.sh --init systemd)"
    exit 77
fi
require_privileges
require_kernel_wireguard
shopt -s nullglob
if [[ -n ${NB_DEB:-} ]]; then debs=("$NB_DEB"); else debs=("$NB_REPO_ROOT"/build-deb/nbagent_*.deb); fi
shopt -u nullglob
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] ||
    skip "no single .deb in ${NB_DEB:-build-deb/} (scripts/package.sh builds it): ${debs[*]:-none}"
deb=${debs[0]}

UNIT=nbagent@wg0
NS_B=nbsd-b
NB_CLEANUP_CMDS+=("systemctl stop $UNIT 2>/dev/null" "ip netns del $NS_B 2>/dev/null"
    "ip link del wg0 2>/dev/null")
NB_SHOW_ON_FAILURE+=(/run/nbsd-journal.txt)
journal() { journalctl -u "$UNIT" --no-pager -o cat >/run/nbsd-journal.txt 2>&1; }
NB_CLEANUP_HOOKS+=(journal)

# --- the package
check "dpkg -i $(basename "$deb")" dpkg -i "$deb"
[[ -x /usr/sbin/nbagent && -f /lib/systemd/system/nbagent@.service ]] ||
    fail "the package did not install /usr/sbin/nbagent and the unit"
check "systemd knows the template" systemctl cat nbagent@.service

# --- B: kernel WireGuard in its own namespace; 20 dummy peers nobody answers for
ip netns add $NS_B
ip link add nbsd0 type veth peer name nbsd1 netns $NS_B
ip addr add 192.168.77.1/24 dev nbsd0
ip link set nbsd0 up
ip -n $NS_B addr add 192.168.77.2/24 dev nbsd1
ip -n $NS_B link set nbsd1 up
ip -n $NS_B link set lo up
a_key=$(wg genkey) b_key=$(wg genkey)
a_pub=$(wg pubkey <<<"$a_key") b_pub=$(wg pubkey <<<"$b_key")
ip -n $NS_B link add wgb type wireguard
ip netns exec $NS_B wg set wgb private-key <(echo "$b_key") listen-port 51820 \
    peer "$a_pub" allowed-ips 10.77.0.1/32
ip -n $NS_B addr add 10.77.0.2/24 dev wgb
ip -n $NS_B link set wgb up

mkdir -p /etc/wireguard
conf=/etc/wireguard/wg0.conf
# write_map N_DUMMIES [EXTRA_PEER_PUBKEY]: A's wg-quick file, B first.
write_map() {
    local i
    {
        printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = 10.77.0.1/24\n' "$a_key"
        printf '\n[Peer]\nPublicKey = %s\nEndpoint = 192.168.77.2:51820\nAllowedIPs = 10.77.0.2/32\n' "$b_pub"
        for ((i = 1; i <= $1; i++)); do
            printf '\n[Peer]\nPublicKey = %s\nEndpoint = 192.168.77.%d:51820\nAllowedIPs = 10.77.1.%d/32\n' \
                "${dummies[i]}" $((100 + i)) "$i"
        done
        [[ -n ${2:-} ]] && printf '\n[Peer]\nPublicKey = %s\nEndpoint = 192.168.77.99:51820\nAllowedIPs = 10.77.0.3/32\n' "$2"
    } >"$conf.new"
    chmod 600 "$conf.new"
    mv "$conf.new" "$conf"
}
dummies=("")
for ((i = 1; i <= 20; i++)); do dummies+=("$(wg genkey | wg pubkey)"); done
write_map 20
# The settings file the unit's agent reads (and SIGHUP reads again).
mkdir -p /etc/nbagent
printf 'inactivity-threshold = 10m\n' >/etc/nbagent/wg0.conf

cli() { nbagent "$@" -i wg0; }
state_of() { cli status --json -d | jq -r --arg k "$1" '.peers[] | select(.public_key == $k) | .state'; }
main_pid() { systemctl show -p MainPID --value "$UNIT"; }

# --- start: Type=notify, so `systemctl start` returns once READY=1 came
check "systemctl start $UNIT" timeout 120 systemctl start "$UNIT"
[[ $(systemctl is-active "$UNIT") == active ]] || fail "$UNIT is $(systemctl is-active "$UNIT") after start"
status_text=$(systemctl show -p StatusText --value "$UNIT")
[[ $status_text == "21 peers: 21 Idle, 0 Connecting, 0 Connected" ]] ||
    fail "STATUS= is '$status_text', expected the counts of 21 idle peers"
pass "active (READY=1); STATUS=$status_text"
pid=$(main_pid)
# The capabilities the unit bounds it to, and nothing else: NET_ADMIN (12), NET_RAW (13),
# PERFMON (38), BPF (39).
cap_eff=$(awk '/^CapEff:/ {print $2}' "/proc/$pid/status")
[[ $cap_eff == 000000c000003000 ]] || fail "the agent's effective capabilities are $cap_eff, not NET_ADMIN NET_RAW PERFMON BPF"
pass "runs with exactly CAP_NET_ADMIN CAP_NET_RAW CAP_PERFMON CAP_BPF (CapEff $cap_eff)"
summary=$(cli status --json | jq -r '"\(.wg_backend) \(.trigger)"')
# The sandbox must leave what the BPF engine needs: with bpf() filtered out the agent
# would fall back to UDP listeners and still work.
[[ $summary == "kernel bpf" ]] || fail "the agent runs WireGuard/trigger '$summary', not 'kernel bpf'"
pass "kernel WireGuard with the BPF trigger engine inside the unit's sandbox"
journalctl -u "$UNIT" --no-pager -o cat | grep -q 'inactivity 10m' ||
    fail "the agent did not take inactivity-threshold from /etc/nbagent/wg0.conf"
pass "the settings file set the inactivity threshold (10m)"

# --- a wake
[[ $(state_of "$b_pub") == Idle ]] || fail "B is $(state_of "$b_pub") before any traffic, not Idle"
check "first ping to B wakes it" ping -c 1 -W 10 10.77.0.2
b_connected() { [[ $(state_of "$b_pub") == Connected ]]; }
wait_for 20 "B Connected" b_connected
pass "B woke on its first packet and is Connected"

# --- reload with a changed map: one dummy out, C in
c_pub=$(wg genkey | wg pubkey)
write_map 19 "$c_pub"
since=$(date '+%Y-%m-%d %H:%M:%S')
check "systemctl reload $UNIT" systemctl reload "$UNIT"
wait_for 20 "the map diff in the journal" eval \
    "journalctl -u $UNIT --since '$since' --no-pager -o cat | grep -q 'network map: 1 added, 1 removed, 0 changed, 20 unchanged'"
pass "reload applied the diff: $(journalctl -u "$UNIT" --since "$since" --no-pager -o cat | grep -o 'network map: .*' | tail -n 1)"
wg show wg0 peers | grep -qx "$c_pub" || fail "C is not in WireGuard after the reload"
! wg show wg0 peers | grep -qx "${dummies[20]}" || fail "the removed peer is still in WireGuard"
b_connected || fail "the reload disturbed B (now $(state_of "$b_pub"))"
[[ $(systemctl is-active "$UNIT") == active && $(main_pid) == "$pid" ]] || fail "the reload restarted the agent"
pass "C added, the dummy removed, B still Connected, same process"

# --- a crash: Restart=on-failure starts it again, and it adopts what the last one left
systemctl kill -s KILL "$UNIT"
restarted() { [[ $(systemctl is-active "$UNIT") == active && $(main_pid) != "$pid" && $(main_pid) != 0 ]]; }
wait_for 60 "a restarted agent (Restart=on-failure)" restarted
[[ $(systemctl show -p NRestarts --value "$UNIT") == 1 ]] ||
    fail "NRestarts is $(systemctl show -p NRestarts --value "$UNIT"), not 1"
pass "killed with SIGKILL, restarted once by systemd (pid $pid -> $(main_pid))"
check "B answers through the restarted agent" ping -c 1 -W 10 10.77.0.2

# --- security of the live unit (the sandbox it really ran in)
security=$(systemd-analyze security --no-pager "$UNIT" 2>&1 | tail -n 1)
score=$(sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p' <<<"$security")
[[ -n $score ]] || fail "systemd-analyze security gave no score: $security"
awk -v s="$score" 'BEGIN { exit !(s <= 4.0) }' || fail "exposure $score > 4.0: $security"
pass "systemd-analyze security $UNIT: $security"

# --- stop: every endpoint given back
check "systemctl stop $UNIT" timeout 120 systemctl stop "$UNIT"
[[ $(systemctl show -p Result --value "$UNIT") == success ]] ||
    fail "the unit's result is $(systemctl show -p Result --value "$UNIT"), not success"
expect=$(awk '/^PublicKey/ {k = $3} /^Endpoint/ {print k "\t" $3}' "$conf" | sort)
got=$(wg show wg0 endpoints | sort)
[[ $got == "$expect" ]] || fail "endpoints after stop differ from the map: $(diff <(echo "$expect") <(echo "$got") | head -n 6)"
pass "stopped with success; all $(wc -l <<<"$got") endpoints are the map's again"
