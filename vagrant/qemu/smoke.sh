#!/usr/bin/env bash
# Kernel features the tests need, each tried for real (run as root, in the matrix VM or
# on any host):   smoke.sh [BUILD_DIR]      (default: build)
# Prints "SMOKE <feature> ok|FAIL|n/a <detail>" per feature; exits 1 if a feature the
# kernel should have failed. tcx is required from kernel 6.6 on and n/a below; kernel
# WireGuard is required in the matrix VMs and n/a on a host kernel without it.
set -uo pipefail

BUILD=${1:-build}
OBJ="$BUILD/bpf/lazy_peer.bpf.o"
NS1="nbsmoke$$-1"
NS2="nbsmoke$$-2"
# A private bpffs outside /sys: `ip netns exec` and `tc -n` remount /sys, which would
# hide pins under /sys/fs/bpf from tc.
BPFFS="/run/nbsmoke$$"
PIN="$BPFFS/progs"
failed=0

cleanup() {
    ip netns del "$NS1" 2>/dev/null
    ip netns del "$NS2" 2>/dev/null
    umount "$BPFFS" 2>/dev/null && rmdir "$BPFFS"
}
trap cleanup EXIT

# result FEATURE COMMAND...: runs COMMAND quietly, prints the verdict with its last
# output line when it failed.
result() {
    local feature=$1 out
    shift
    if out=$("$@" 2>&1); then
        echo "SMOKE $feature ok"
    else
        echo "SMOKE $feature FAIL $(tail -n 1 <<<"$out")"
        failed=1
    fi
}

kernel_at_least() {
    local want_major=$1 want_minor=$2 major minor
    IFS=. read -r major minor _ <<<"$(uname -r)"
    ((major > want_major || (major == want_major && minor >= want_minor)))
}

mkdir -p "$BPFFS" && mount -t bpf bpf "$BPFFS" || {
    echo "SMOKE bpffs FAIL cannot mount bpffs on $BPFFS"
    exit 1
}

echo "SMOKE kernel $(uname -r)"
result netns bash -c "ip netns add $NS1 && ip netns add $NS2"
result veth bash -c "
    ip link add v1 netns $NS1 type veth peer name v2 netns $NS2 &&
    ip -n $NS1 addr add 10.199.0.1/24 dev v1 && ip -n $NS2 addr add 10.199.0.2/24 dev v2 &&
    ip -n $NS1 link set v1 up && ip -n $NS2 link set v2 up &&
    ip netns exec $NS1 ping -c 1 -W 5 10.199.0.2"
result tun ip -n "$NS1" tuntap add dev nbsmoketun mode tun

# Kernel WireGuard end to end: two devices over the veth, one ping through the tunnel.
wg_smoke() {
    local k1 k2 ns
    k1=$(wg genkey) && k2=$(wg genkey) || return 1
    for ns in "$NS1" "$NS2"; do
        ip -n "$ns" link add wg0 type wireguard || return 1
    done
    ip netns exec "$NS1" wg set wg0 private-key <(echo "$k1") listen-port 51820 \
        peer "$(wg pubkey <<<"$k2")" allowed-ips 10.198.0.2/32 endpoint 10.199.0.2:51820 || return 1
    ip netns exec "$NS2" wg set wg0 private-key <(echo "$k2") listen-port 51820 \
        peer "$(wg pubkey <<<"$k1")" allowed-ips 10.198.0.1/32 || return 1
    ip -n "$NS1" addr add 10.198.0.1/24 dev wg0 && ip -n "$NS2" addr add 10.198.0.2/24 dev wg0 &&
        ip -n "$NS1" link set wg0 up && ip -n "$NS2" link set wg0 up &&
        ip netns exec "$NS1" ping -c 1 -W 10 10.198.0.2
}
# Required in the matrix VMs (NBVM_KERNEL_SERIES is set there); a host kernel built
# without WireGuard (this CI host) is a known property, not a failure.
if [[ -z ${NBVM_KERNEL_SERIES:-} ]] && ! ip -n "$NS1" link add nbsmokewg type wireguard 2>/dev/null; then
    echo "SMOKE kernel_wireguard n/a this host's kernel has no WireGuard"
else
    ip -n "$NS1" link del nbsmokewg 2>/dev/null
    result kernel_wireguard wg_smoke
fi

# bpffs refuses names with dots.
result bpf_ringbuf bpftool map create "${PIN}_rb" type ringbuf key 0 value 0 entries 4096 name nbsmoke_rb

# clsact with our real programs (loaded by bpftool, attached by tc), then traffic
# through them: the tables are empty, so every packet must pass.
# bpftool before v7 (libbpf before 1.0, Debian 11's 5.10) pins programs by section name,
# and ours share one ("tc"): its loadall cannot pin them. That is the tool, not the
# kernel; the agent's own loader (libbpf 1.x) is what ctest's BPF tests use there.
bpftool_version=$(bpftool version 2>/dev/null | awk 'NR==1 {print $2}') # "v7.1.0"
bpftool_major=${bpftool_version#v}
bpftool_major=${bpftool_major%%.*}
if [[ -f $OBJ ]] && ((${bpftool_major:-0} < 7)); then
    echo "SMOKE bpf_load_ours n/a bpftool $bpftool_version pins by section name (needs v7+)"
    echo "SMOKE tc_clsact n/a needs bpf_load_ours"
elif [[ -f $OBJ ]]; then
    result bpf_load_ours bpftool prog loadall "$OBJ" "$PIN" type classifier
    result tc_clsact bash -c "
        tc -n $NS1 qdisc add dev v1 clsact &&
        tc -n $NS1 filter add dev v1 egress bpf object-pinned $PIN/nb_egress direct-action &&
        tc -n $NS1 filter add dev v1 ingress bpf object-pinned $PIN/nb_ingress direct-action &&
        tc -n $NS1 filter show dev v1 egress | grep -q nb_egress &&
        ip netns exec $NS1 ping -c 1 -W 5 10.199.0.2"
else
    echo "SMOKE bpf_load_ours FAIL $OBJ missing (build the tree first)"
    echo "SMOKE tc_clsact FAIL $OBJ missing"
    failed=1
fi

# tcx: the agent's own probe (a real tcx link), when this build has `nbagent features`.
nbagent="$BUILD/cli/nbagent"
if features=$("$nbagent" features --json 2>/dev/null) && jq -e .tcx <<<"$features" >/dev/null; then
    tcx_ok=$(jq -r .tcx.ok <<<"$features")
    tcx_detail=$(jq -r .tcx.detail <<<"$features")
    if kernel_at_least 6 6; then
        if [[ $tcx_ok == true ]]; then
            echo "SMOKE tcx ok"
        else
            echo "SMOKE tcx FAIL $tcx_detail"
            failed=1
        fi
    else
        # Below 6.6 a yes would mean the probe is wrong.
        if [[ $tcx_ok == true ]]; then
            echo "SMOKE tcx FAIL probe says yes on a kernel older than 6.6"
            failed=1
        else
            echo "SMOKE tcx n/a kernel < 6.6 ($tcx_detail)"
        fi
    fi
else
    echo "SMOKE tcx FAIL $nbagent features --json unavailable"
    failed=1
fi
exit "$failed"
