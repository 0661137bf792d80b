#!/usr/bin/env bash
# Runs one command as root on a Debian kernel under qemu (TCG; no KVM needed):
#   run-vm.sh [--timeout SECONDS] [--scratch DIR] [--memory SIZE] [--init systemd]
#             SERIES -- COMMAND [ARGS...]
# SERIES: 5.10, 6.1 or 6.12 (see fetch-kernels.sh). The guest sees the host's root
# read-only through 9p, overlaid on a tmpfs (writes vanish with the VM), with its own
# /proc, /sys, /dev, bpffs, and tmpfs on /run and /tmp. COMMAND runs in the current
# directory (which must therefore exist on the host's root), with CI and every NB_*
# variable of this environment. The console streams to stdout; the exit code is
# COMMAND's, or 124 when the VM hung past the timeout (default 1200 s, env
# NBVM_TIMEOUT), or 125 when the VM ended without one (boot failure, panic).
# The scratch share (default a fresh directory, removed afterwards) is writable and
# mounted at /nbvm in the guest: tests can leave results there (NBVM_SCRATCH names it).
# --memory (default 2G, env NBVM_MEMORY) is qemu's -m: a million kernel WireGuard peers
# need about 8G. --init systemd boots the host's systemd as PID 1 and runs COMMAND as a
# service (init.sh, boot_systemd); by default a shell in a chroot runs it.
# NBVM_TCG_THREAD=single runs both vCPUs on one host thread: slower, but
# immune to multi-threaded TCG's stale code after the kernel patches its own text (seen
# twice in ping-heavy benches: an Oops on the int3 of a static-key patch site in
# netif_rx_internal and __netif_receive_skb_core, on a vCPU other than the patcher's).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${NBVM_CACHE:-/var/cache/nbagent-vm}
timeout_s=${NBVM_TIMEOUT:-1200}
memory=${NBVM_MEMORY:-2G}
tcg_thread=${NBVM_TCG_THREAD:-multi}
scratch=""
keep_scratch=0
init=shell

die() {
    echo "run-vm.sh: $*" >&2
    exit 125
}
usage() {
    echo "usage: run-vm.sh [--timeout SECONDS] [--scratch DIR] [--memory SIZE] [--init systemd] SERIES -- COMMAND [ARGS...]" >&2
    exit 2
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --timeout) timeout_s=${2:?}; shift 2 ;;
        --scratch) scratch=${2:?}; keep_scratch=1; shift 2 ;;
        --memory) memory=${2:?}; shift 2 ;;
        --init) init=${2:?}; shift 2 ;;
        -*) usage ;;
        *) break ;;
    esac
done
[[ $# -ge 3 && $2 == -- ]] || usage
series=$1
shift 2
[[ $timeout_s =~ ^[0-9]+$ ]] || die "--timeout must be a number of seconds"
[[ $memory =~ ^[0-9]+[MG]$ ]] || die "--memory must be a size like 2G or 512M, not '$memory'"
[[ $init == shell || $init == systemd ]] || die "--init is systemd (or the default, shell), not '$init'"
[[ $tcg_thread == multi || $tcg_thread == single ]] || die "NBVM_TCG_THREAD is multi or single"
[[ $(id -u) -eq 0 ]] || die "needs root (the cache, and a guest root that matches the host's)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed (scripts/setup.sh installs it)"
# The initramfs has no libc: busybox must be the static build.
[[ -x /bin/busybox && $(readelf -l /bin/busybox 2>/dev/null | grep -c 'program interpreter') == 0 ]] ||
    die "/bin/busybox is not the static one (install busybox-static)"

# The kernel: fetch-kernels.sh's last line is "kernel SERIES PKG=VERSION ROOT".
kline=$("$HERE/fetch-kernels.sh" "$series" | tail -n 1) || die "fetching kernel $series failed"
read -r _ _ kpkg kroot <<<"$kline"
[[ -d $kroot/lib/modules ]] || die "fetch-kernels.sh gave no usable root for $series ('$kline')"
kver=$(basename "$(find "$kroot/lib/modules" -mindepth 1 -maxdepth 1 -type d -print -quit)")
vmlinuz="$kroot/boot/vmlinuz-$kver"
moddir="$kroot/lib/modules/$kver"
[[ -f $vmlinuz && -f $moddir/modules.dep ]] || die "missing $vmlinuz or $moddir/modules.dep"

# Modules the guest needs, by name; built-in ones are skipped, dependencies come from
# modules.dep (names and dependencies differ between 5.10 and 6.x).
#   9p root: virtio_pci, 9pnet_virtio, 9p     writable root: overlay
#   tests: wireguard, veth, tun (wireguard-go), sch_ingress (clsact), cls_bpf, act_bpf
#   entropy for key generation: virtio_rng
WANTED=(virtio_pci 9pnet_virtio 9p overlay virtio_rng wireguard veth tun sch_ingress cls_bpf act_bpf)

# Prints module paths (relative to moddir) in load order: dependencies first.
resolve_modules() {
    awk -v wanted="${WANTED[*]}" -v builtin="$moddir/modules.builtin" '
        function name(path,   n) { n = path; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n); gsub(/-/, "_", n); return n }
        function visit(n,   i, k, d) {
            if (n in done) return
            if (!(n in path)) { print "ERROR " n; err = 1; return }
            done[n] = 1
            k = split(deps[n], d, " ")
            for (i = 1; i <= k; i++) visit(name(d[i]))
            print path[n]
        }
        BEGIN {
            while ((getline line < builtin) > 0) isbuiltin[name(line)] = 1
        }
        {
            p = $1; sub(/:$/, "", p)
            n = name(p); path[n] = p; $1 = ""; deps[n] = $0
        }
        END {
            k = split(wanted, w, " ")
            for (i = 1; i <= k; i++) {
                n = w[i]; gsub(/-/, "_", n)
                if (n in isbuiltin) continue
                visit(n)
            }
        }' "$moddir/modules.dep"
}

# The initramfs, cached per kernel package and per content of this script and init.sh.
build_initramfs() {
    local key out mods tmp m base
    key=$(cat "$HERE/init.sh" "${BASH_SOURCE[0]}" /bin/busybox | sha1sum | cut -c1-12)
    out="$CACHE/initramfs/$series-$key.cpio.gz"
    if [[ -f $out && -f $out.package && $(cat "$out.package") == "$kpkg" ]]; then
        echo "$out"
        return
    fi
    mods=$(resolve_modules)
    if grep -q '^ERROR' <<<"$mods"; then
        die "kernel $kver lacks modules: $(grep '^ERROR' <<<"$mods" | cut -d' ' -f2 | tr '\n' ' ')"
    fi
    tmp=$(mktemp -d)
    mkdir -p "$tmp/bin" "$tmp/lib/nbvm"
    cp /bin/busybox "$tmp/bin/busybox"
    cp "$HERE/init.sh" "$tmp/init"
    chmod 755 "$tmp/init"
    # busybox insmod reads plain ELF only.
    while read -r m; do
        base=$(basename "$m")
        base=${base%%.ko*}
        case $m in
            *.ko) cp "$moddir/$m" "$tmp/lib/nbvm/$base.ko" ;;
            *.ko.xz) xz -dc "$moddir/$m" >"$tmp/lib/nbvm/$base.ko" ;;
            *.ko.zst) zstd -qdc "$moddir/$m" >"$tmp/lib/nbvm/$base.ko" ;;
            *.ko.gz) gzip -dc "$moddir/$m" >"$tmp/lib/nbvm/$base.ko" ;;
            *) rm -rf "$tmp"; die "unknown module format: $m" ;;
        esac
        echo "$base" >>"$tmp/lib/nbvm/order"
    done <<<"$mods"
    mkdir -p "$CACHE/initramfs"
    rm -f "$CACHE/initramfs/$series-"*
    (cd "$tmp" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) >"$out.tmp"
    rm -rf "$tmp"
    mv "$out.tmp" "$out"
    echo "$kpkg" >"$out.package"
    echo "$out"
}
initrd=$(build_initramfs)

if [[ -z $scratch ]]; then
    scratch=$(mktemp -d /tmp/nbvm.XXXXXX)
fi
mkdir -p "$scratch"
rm -f "$scratch/rc" "$scratch/init"
[[ $init == systemd ]] && echo systemd >"$scratch/init"
cleanup() { ((keep_scratch)) || rm -rf "$scratch"; }
trap cleanup EXIT

# The command, quoted once here; no shell of ours re-parses it.
{
    echo "# generated by run-vm.sh"
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb"
    echo "export NBVM_SCRATCH=/nbvm NBVM_KERNEL_SERIES=$series"
    while IFS='=' read -r name _; do
        [[ $name == CI || $name == NB_* ]] && printf 'export %s=%q\n' "$name" "${!name}"
    done < <(env)
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$scratch/cmd.sh"
# init.sh must not hide the command's directory under a fresh tmpfs (a CI clone in /tmp).
printf '%s\n' "$PWD" >"$scratch/workdir"

echo "run-vm.sh: booting $kpkg ($kver) under qemu TCG, timeout ${timeout_s} s"
rc=0
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread="$tcg_thread" -cpu max -m "$memory" -smp 2 \
    -nographic -nodefaults -no-user-config -no-reboot \
    -serial stdio \
    -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=4" \
    -device virtio-rng-pci \
    -fsdev local,id=hostroot,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -fsdev local,id=scratch,path="$scratch",security_model=passthrough \
    -device virtio-9p-pci,fsdev=scratch,mount_tag=scratch \
    </dev/null || rc=$?
if ((rc == 124 || rc == 137)); then
    echo "run-vm.sh: FAIL: the VM ($series) did not finish within ${timeout_s} s and was killed"
    exit 124
fi
if [[ ! -s $scratch/rc ]]; then
    echo "run-vm.sh: FAIL: the VM ($series) ended without an exit code (qemu exit $rc): boot failure or panic, see the console above"
    exit 125
fi
exit "$(cat "$scratch/rc")"
