#!/usr/bin/env bash
# A two-host WireGuard lab in network namespaces:
#   NAME-a  the agent host (nothing runs there until a test starts it)
#   NAME-b  the remote host: real WireGuard (wireguard-go, or the kernel's with
#           --wg kernel), overlay 10.100.0.2 / fd10:100::2,
#           routed subnet 10.200.0.0/24 (10.200.0.1) and fd10:200::/64 (fd10:200::1)
# joined by a veth pair on the underlay 10.231.X.0/24 (fd31:231:X::/64).
#
#   lab.sh up NAME [--peers N] [--dir DIR] [--wg userspace|kernel]
#                                            N peers in A's config: B plus N-1 dummies
#   lab.sh down NAME [--dir DIR]
#
# `up` writes DIR (default /run/nbagent-lab/NAME): a.conf (wg-quick config for side A),
# b.conf (side B's, with A's endpoint, for a second agent on B's existing interface)
# and env.sh (NS_A NS_B WG_A WG_B A_CONF B_CONF REMOTE_V4 REMOTE_V6 ROUTED_V4 ROUTED_V6
# B_PUBKEY A_PUBKEY UNDERLAY_A UNDERLAY_B UNDERLAY_B6 LAB_DIR LAB_PEERS LAB_WG).
# Traffic never leaves the two namespaces: the dummy peers' endpoints are addresses
# in the lab's own underlay subnet that nobody holds.
set -euo pipefail
# shellcheck source=scripts/netns-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns-lib.sh"

LAB_ROOT=/run/nbagent-lab

die() {
    echo "lab.sh: $*" >&2
    exit 1
}
log() { echo "lab.sh: $*"; }

usage() {
    echo "usage: lab.sh up NAME [--peers N] [--dir DIR] [--wg userspace|kernel] | lab.sh down NAME [--dir DIR]" >&2
    exit 2
}

# wireguard-go's UAPI socket lives in /var/run/wireguard/IFNAME.sock, which every
# namespace shares, so interface names must be unique across labs, within 15 chars.
iface_base() {
    local name=$1
    if ((${#name} <= 10)); then
        echo "$name"
    else
        local h
        h=$(printf '%s' "$name" | cksum | awk '{printf "%05x", $1 % 1048576}')
        echo "${name:0:5}$h"
    fi
}

# Third octet of the underlay: derived from the name, moved on while another live
# namespace already holds that subnet, so two labs can coexist.
pick_octet() {
    local name=$1 x tries others
    x=$(($(printf '%s' "$name" | cksum | awk '{print $1}') % 200 + 20))
    others=$(ip netns list | awk '{print $1}' | grep -vx -e "$name-a" -e "$name-b" || true)
    for ((tries = 0; tries < 200; tries++)); do
        local used=0 ns
        for ns in $others; do
            if ip -n "$ns" -4 addr show 2>/dev/null | grep -q "inet 10\.231\.$x\."; then
                used=1
                break
            fi
        done
        ((used)) || break
        x=$(((x - 20 + 1) % 200 + 20))
    done
    echo "$x"
}

# Bulk public keys: any 32 bytes are a valid Curve25519 public key. 33 random bytes
# give 44 random base64 characters; keep 42, map the 43rd onto the 16 characters whose
# low two bits are zero (the canonical last character of a 32-byte value), add "=".
random_pubkeys() {
    local n=$1
    ((n > 0)) || return 0
    head -c $((n * 33)) /dev/urandom | base64 -w 44 | awk '
        BEGIN {
            a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            for (i = 0; i < 64; i++) m[substr(a, i + 1, 1)] = substr(a, (i % 16) * 4 + 1, 1)
        }
        { print substr($0, 1, 42) m[substr($0, 43, 1)] "=" }'
}

lab_down() {
    local name=$1 dir=$2 base
    base=$(iface_base "$name")
    kill_ns_processes "$name-a"
    kill_ns_processes "$name-b"
    for ns in "$name-a" "$name-b"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            log "deleting namespace $ns"
            ip netns del "$ns"
        fi
    done
    rm -f "/var/run/wireguard/wg-$base-a.sock" "/var/run/wireguard/wg-$base-b.sock"
    if [[ -d $dir ]]; then
        log "removing $dir"
        rm -rf "$dir"
    fi
}

lab_up() {
    local name=$1 peers=$2 dir=$3 wg_mode=$4
    local ns_a="$name-a" ns_b="$name-b" base x wg_a wg_b
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad lab name '$name'"
    ((peers >= 1 && peers <= 1048576)) || die "--peers must be between 1 and 1048576"
    base=$(iface_base "$name")
    wg_a="wg-$base-a"
    wg_b="wg-$base-b"
    x=$(pick_octet "$name")

    # Leftovers of a previous run with the same name would make `up` half-fail.
    lab_down "$name" "$dir" >/dev/null

    local u_a="10.231.$x.1" u_b="10.231.$x.2" u6_a="fd31:231:$x::1" u6_b="fd31:231:$x::2"
    log "namespaces $ns_a, $ns_b; underlay $u_a <-> $u_b; interfaces $wg_a, $wg_b"
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    ip -n "$ns_a" link set lo up
    ip -n "$ns_b" link set lo up
    ip link add "veth-$base-a" netns "$ns_a" type veth peer name "veth-$base-b" netns "$ns_b"
    ip -n "$ns_a" link set "veth-$base-a" name eth0
    ip -n "$ns_b" link set "veth-$base-b" name eth0
    ip -n "$ns_a" addr add "$u_a/24" dev eth0
    ip -n "$ns_b" addr add "$u_b/24" dev eth0
    ip -n "$ns_a" addr add "$u6_a/64" dev eth0 nodad
    ip -n "$ns_b" addr add "$u6_b/64" dev eth0 nodad
    ip -n "$ns_a" link set eth0 up
    ip -n "$ns_b" link set eth0 up

    mkdir -p "$dir"
    chmod 700 "$dir"
    local a_priv a_pub b_priv b_pub
    a_priv=$(wg genkey)
    a_pub=$(wg pubkey <<<"$a_priv")
    b_priv=$(wg genkey)
    b_pub=$(wg pubkey <<<"$b_priv")

    if [[ $wg_mode == kernel ]]; then
        log "creating kernel WireGuard device $wg_b in $ns_b"
        ip -n "$ns_b" link add "$wg_b" type wireguard || die "no kernel WireGuard here (ip link add type wireguard failed)"
    else
        # Side B: wireguard-go in the foreground of its own session, so it stays a child
        # of nothing we wait for; `down` finds it through `ip netns pids`.
        log "starting wireguard-go $wg_b in $ns_b"
        ip netns exec "$ns_b" setsid wireguard-go -f "$wg_b" >"$dir/wireguard-go-b.log" 2>&1 </dev/null &
        local i
        for ((i = 0; i < 100; i++)); do
            [[ -S /var/run/wireguard/$wg_b.sock ]] && ip -n "$ns_b" link show "$wg_b" >/dev/null 2>&1 && break
            sleep 0.05
        done
        [[ -S /var/run/wireguard/$wg_b.sock ]] || die "wireguard-go for $wg_b did not start: $(cat "$dir/wireguard-go-b.log")"
    fi
    local b_conf="$dir/b.wg"
    cat >"$b_conf" <<EOF
[Interface]
PrivateKey = $b_priv
ListenPort = 51820

[Peer]
PublicKey = $a_pub
AllowedIPs = 10.100.0.1/32, fd10:100::1/128
EOF
    ip netns exec "$ns_b" wg setconf "$wg_b" "$b_conf"
    # The same side B as a config for a second nbagent on B's existing interface (lazy
    # on both sides); no Address: B's addresses are set below and stay.
    {
        cat "$b_conf"
        echo "Endpoint = $u_a:51820"
    } >"$dir/b.conf"
    chmod 600 "$dir/b.conf"
    ip -n "$ns_b" addr add 10.100.0.2/16 dev "$wg_b"
    ip -n "$ns_b" addr add fd10:100::2/64 dev "$wg_b" nodad
    ip -n "$ns_b" link set "$wg_b" up
    # The routed subnet's host address sits on lo (no dummy module on every kernel);
    # B reaches it locally, A routes the whole subnet to B through WireGuard.
    ip -n "$ns_b" addr add 10.200.0.1/32 dev lo
    ip -n "$ns_b" addr add fd10:200::1/128 dev lo

    # Side A's config: the real remote first, then dummies with unique host routes
    # (10.101.0.1, 10.101.0.2, ... continuing into 10.102/16 past 65535 peers).
    log "writing $dir/a.conf with $peers peers"
    {
        cat <<EOF
[Interface]
PrivateKey = $a_priv
ListenPort = 51820
Address = 10.100.0.1/16, fd10:100::1/64

[Peer]
PublicKey = $b_pub
AllowedIPs = 10.100.0.2/32, fd10:100::2/128, 10.200.0.0/24, fd10:200::/64
Endpoint = $u_b:51820
EOF
        random_pubkeys $((peers - 1)) | awk -v x="$x" '
            {
                i = NR
                printf "\n[Peer]\nPublicKey = %s\n", $0
                printf "AllowedIPs = 10.%d.%d.%d/32, fd10:101::%x:%x/128\n", 101 + int(i / 65536), int(i / 256) % 256, i % 256, int(i / 65536), i % 65536
                printf "Endpoint = 10.231.%d.%d:51820\n", x, 100 + i % 100
            }'
    } >"$dir/a.conf"
    chmod 600 "$dir/a.conf"

    cat >"$dir/env.sh" <<EOF
NS_A=$ns_a
NS_B=$ns_b
WG_A=$wg_a
WG_B=$wg_b
A_CONF=$dir/a.conf
B_CONF=$dir/b.conf
A_PUBKEY=$a_pub
B_PUBKEY=$b_pub
REMOTE_V4=10.100.0.2
REMOTE_V6=fd10:100::2
ROUTED_V4=10.200.0.1
ROUTED_V6=fd10:200::1
UNDERLAY_A=$u_a
UNDERLAY_B=$u_b
UNDERLAY_B6=$u6_b
LAB_DIR=$dir
LAB_PEERS=$peers
LAB_WG=$wg_mode
EOF
    log "ready: source $dir/env.sh"
}

[[ $# -ge 2 ]] || usage
cmd=$1
name=$2
shift 2
peers=1000
dir=""
wg_mode=userspace
while [[ $# -gt 0 ]]; do
    case $1 in
        --peers) peers=${2:?--peers needs a value}; shift 2 ;;
        --dir) dir=${2:?--dir needs a value}; shift 2 ;;
        --wg) wg_mode=${2:?--wg needs a value}; shift 2 ;;
        *) usage ;;
    esac
done
[[ $peers =~ ^[0-9]+$ ]] || die "--peers must be a number"
[[ $wg_mode == userspace || $wg_mode == kernel ]] || die "--wg must be userspace or kernel"
[[ -n $dir ]] || dir="$LAB_ROOT/$name"
[[ $(id -u) -eq 0 ]] || die "needs root"

case $cmd in
    up) lab_up "$name" "$peers" "$dir" "$wg_mode" ;;
    down) lab_down "$name" "$dir" ;;
    *) usage ;;
esac
