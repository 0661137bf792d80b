#!/usr/bin/env bash
# A fleet lab in network namespaces: an etcd cluster and N hosts on one bridge.
#   NAME-hub   the bridge br0 (the underlay 10.240.X.0/24) and the etcd members,
#              each a real `etcd` process on an address of its own (.201, .202, ...)
#   NAME-nI    host I (1..N): eth0 on the bridge at 10.240.X.I; nothing runs there
#              until a test starts an agent; its WireGuard overlay address is
#              10.241.X.I/16 (fd41:X::I/64)
#
#   fleet-lab.sh up NAME [--hosts N] [--members M] [--dir DIR] [--tls]
#   fleet-lab.sh down NAME [--dir DIR]
#   fleet-lab.sh member NAME I start|stop|kill [--dir DIR]   one etcd member
#
# `up` writes DIR (default /run/nbagent-lab/NAME): hI.conf (host I's wg-quick file:
# [Interface] only, the peers come from etcd), the members' data and logs, and env.sh:
# FLEET_HUB FLEET_HOSTS FLEET_MEMBERS FLEET_ETCD (client URLs, comma-separated),
# FLEET_NET (10.240.X), FLEET_OVERLAY (10.241.X) and, per host I, FLEET_NS_I,
# FLEET_IF_I (WireGuard interface), FLEET_CONF_I and FLEET_KEY_I (public key).
# --tls: a CA made with openssl; the members serve https with a certificate for their
# addresses and want a client certificate (--client-cert-auth); env.sh adds FLEET_CA,
# FLEET_CERT and FLEET_KEY (one client certificate for the lab's agents).
set -euo pipefail
# shellcheck source=scripts/netns-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/netns-lib.sh"

LAB_ROOT=/run/nbagent-lab

die() {
    echo "fleet-lab.sh: $*" >&2
    exit 1
}
log() { echo "fleet-lab.sh: $*"; }
usage() {
    echo "usage: fleet-lab.sh up NAME [--hosts N] [--members M] [--dir DIR] | down NAME [--dir DIR] |" >&2
    echo "       member NAME I start|stop|kill [--dir DIR]" >&2
    exit 2
}

# The third octet, from the name: two fleet labs with different names do not collide.
octet() { echo $(($(printf '%s' "$1" | cksum | awk '{print $1}') % 200 + 20)); }

fleet_down() {
    local name=$1 dir=$2 ns
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^$name-(hub|n[0-9]+)$" || true); do
        kill_ns_processes "$ns"
        ip netns del "$ns"
    done
    rm -f /var/run/wireguard/"$(iface_prefix "$name")"*.sock
    [[ -d $dir ]] && rm -rf "$dir"
    return 0
}

# WireGuard interface names: unique across labs (wireguard-go's UAPI sockets share
# /var/run/wireguard across namespaces) and within 15 characters.
iface_prefix() { printf 'fw%s' "$(printf '%s' "$1" | cksum | awk '{printf "%05x", $1 % 1048576}')"; }

# member_cmd DIR I: the etcd command line of member I (client port 2379, peer port 2380
# on its own address).
member_start() {
    local dir=$1 i=$2 hub net members cluster="" j
    # shellcheck source=/dev/null
    source "$dir/env.sh"
    hub=$FLEET_HUB net=$FLEET_NET members=$FLEET_MEMBERS
    for ((j = 1; j <= members; j++)); do
        cluster+="${cluster:+,}m$j=http://$net.$((200 + j)):2380"
    done
    local ip="$net.$((200 + i))" state=new scheme=http tls_args=()
    [[ -d $dir/m$i/member ]] && state=existing
    if [[ -n ${FLEET_CA:-} ]]; then
        scheme=https
        tls_args=(--cert-file "$dir/pki/server.pem" --key-file "$dir/pki/server.key"
            --client-cert-auth --trusted-ca-file "$FLEET_CA")
    fi
    mkdir -p "$dir/m$i"
    ip netns exec "$hub" setsid etcd --name "m$i" --data-dir "$dir/m$i" "${tls_args[@]}" \
        --listen-client-urls "$scheme://$ip:2379" --advertise-client-urls "$scheme://$ip:2379" \
        --listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
        --initial-cluster "$cluster" --initial-cluster-state "$state" \
        --initial-cluster-token "$(basename "$dir")" --log-level warn \
        >>"$dir/m$i.log" 2>&1 </dev/null &
    echo $! >"$dir/m$i.pid"
}

member_signal() {
    local dir=$1 i=$2 sig=$3 pid
    pid=$(cat "$dir/m$i.pid" 2>/dev/null) || die "member $i was never started"
    kill "-$sig" "$pid" 2>/dev/null || true
    local k
    for ((k = 0; k < 100; k++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    die "member $i (pid $pid) did not exit after SIG$sig"
}

# make_pki DIR NET MEMBERS: a CA, the members' server certificate (their addresses as
# IP SANs) and one client certificate, in DIR/pki.
make_pki() {
    local pki=$1/pki sans="IP:127.0.0.1" i
    for ((i = 1; i <= $3; i++)); do sans+=",IP:$2.$((200 + i))"; done
    mkdir -p "$pki"
    (
        cd "$pki"
        local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
        openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=fleet-lab-ca
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$sans" >server.ext
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        for n in server client; do
            openssl req "${ec[@]}" -keyout $n.key -out $n.csr -subj "/CN=fleet-lab-$n"
            openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out $n.pem \
                -days 2 -extfile $n.ext
        done
    ) >"$pki/openssl.log" 2>&1 || die "openssl failed (see $pki/openssl.log)"
}

fleet_up() {
    local name=$1 hosts=$2 members=$3 dir=$4 tls=$5 x net overlay hub prefix i
    [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "bad lab name '$name'"
    ((hosts >= 1 && hosts <= 190)) || die "--hosts must be between 1 and 190"
    ((members >= 1 && members <= 9)) || die "--members must be between 1 and 9"
    command -v etcd >/dev/null || die "etcd not installed (scripts/setup.sh installs etcd-server)"
    fleet_down "$name" "$dir"
    x=$(octet "$name") net="10.240.$x" overlay="10.241.$x" hub="$name-hub"
    prefix=$(iface_prefix "$name")
    mkdir -p "$dir"
    chmod 700 "$dir"
    log "hub $hub (br0 $net.254/24), $members etcd members, $hosts hosts"
    ip netns add "$hub"
    ip -n "$hub" link set lo up
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" addr add "$net.254/24" dev br0
    for ((i = 1; i <= members; i++)); do ip -n "$hub" addr add "$net.$((200 + i))/24" dev br0; done
    ip -n "$hub" link set br0 up
    {
        echo "FLEET_HUB=$hub"
        echo "FLEET_HOSTS=$hosts"
        echo "FLEET_MEMBERS=$members"
        echo "FLEET_NET=$net"
        echo "FLEET_OVERLAY=$overlay"
        echo "FLEET_DIR=$dir"
        local urls="" scheme=http
        ((tls)) && scheme=https
        for ((i = 1; i <= members; i++)); do urls+="${urls:+,}$scheme://$net.$((200 + i)):2379"; done
        echo "FLEET_ETCD=$urls"
        if ((tls)); then
            echo "FLEET_CA=$dir/pki/ca.pem"
            echo "FLEET_CERT=$dir/pki/client.pem"
            echo "FLEET_KEY=$dir/pki/client.key"
        fi
    } >"$dir/env.sh"
    ((tls)) && make_pki "$dir" "$net" "$members"
    for ((i = 1; i <= hosts; i++)); do
        local ns="$name-n$i" key pub
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        ip link add "fv$x-$i" netns "$hub" type veth peer name eth0 netns "$ns"
        ip -n "$hub" link set "fv$x-$i" master br0 up
        ip -n "$ns" addr add "$net.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
        key=$(wg genkey)
        pub=$(wg pubkey <<<"$key")
        printf '[Interface]\nPrivateKey = %s\nListenPort = 51820\nAddress = %s.%d/16\n' \
            "$key" "$overlay" "$i" >"$dir/h$i.conf"
        chmod 600 "$dir/h$i.conf"
        {
            echo "FLEET_NS_$i=$ns"
            echo "FLEET_IF_$i=$prefix-$i"
            echo "FLEET_CONF_$i=$dir/h$i.conf"
            echo "FLEET_KEY_$i=$pub"
        } >>"$dir/env.sh"
    done
    for ((i = 1; i <= members; i++)); do member_start "$dir" "$i"; done
    local deadline=$((SECONDS + 30)) urls
    urls=$(sed -n 's/^FLEET_ETCD=//p' "$dir/env.sh")
    local auth=()
    ((tls)) && auth=(--cacert "$dir/pki/ca.pem" --cert "$dir/pki/client.pem" --key "$dir/pki/client.key")
    until ip netns exec "$hub" env ETCDCTL_API=3 etcdctl --endpoints "$urls" "${auth[@]}" endpoint health \
        >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "the etcd cluster is not healthy after 30 s (logs: $dir/m*.log)"
        sleep 0.2
    done
    log "ready: source $dir/env.sh"
}

[[ $# -ge 2 ]] || usage
cmd=$1 name=$2
shift 2
hosts=12 members=3 dir="" member_i="" member_op="" tls=0
if [[ $cmd == member ]]; then
    [[ $# -ge 2 ]] || usage
    member_i=$1 member_op=$2
    shift 2
fi
while [[ $# -gt 0 ]]; do
    case $1 in
        --hosts) hosts=${2:?}; shift 2 ;;
        --members) members=${2:?}; shift 2 ;;
        --dir) dir=${2:?}; shift 2 ;;
        --tls) tls=1; shift ;;
        *) usage ;;
    esac
done
[[ $hosts =~ ^[0-9]+$ && $members =~ ^[0-9]+$ ]] || die "--hosts and --members are numbers"
[[ -n $dir ]] || dir="$LAB_ROOT/$name"
[[ $(id -u) -eq 0 ]] || die "needs root"

case $cmd in
    up) fleet_up "$name" "$hosts" "$members" "$dir" "$tls" ;;
    down) fleet_down "$name" "$dir" ;;
    member)
        [[ -f $dir/env.sh ]] || die "no fleet lab in $dir"
        case $member_op in
            start) member_start "$dir" "$member_i" ;;
            stop) member_signal "$dir" "$member_i" TERM ;;
            kill) member_signal "$dir" "$member_i" KILL ;;
            *) usage ;;
        esac
        ;;
    *) usage ;;
esac
