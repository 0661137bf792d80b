#!/usr/bin/env bash
# Runs the Vagrant provisioner (provision.sh) of a Debian release in a debootstrap
# chroot on this host's kernel, since Vagrant and KVM are not available everywhere
# (they are not on the project's CI machine). It checks what is about the distribution
# (its packages, compiler, CMake, libbpf, the build and the whole ctest suite), not its
# kernel: that is the qemu matrix's job.
#   vagrant/chroot-check.sh bookworm|bullseye [--keep] [--without PKG]...
# Run as root. The chroot is made once under $NBVM_CACHE (default /var/cache/nbagent-vm)
# with --variant=minbase (a box has more; provision.sh must install everything it uses)
# and copied fresh for each run, so every run starts from the bare system. --keep leaves
# the run's copy in place for a look afterwards. --without PKG pins PKG away in the copy,
# as on a release that lacks it, so provision.sh's top-up for it runs (libabsl-dev,
# libcli11-dev, libbpf-dev...). NB_VAGRANT_SCENARIOS passes through (provision.sh's
# matrix mode: only the scenarios' targets are built). Exit code: provision.sh's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${NBVM_CACHE:-/var/cache/nbagent-vm}
USAGE="usage: chroot-check.sh bookworm|bullseye [--keep] [--without PKG]..."
SUITE=${1:?$USAGE}
shift
keep=0
without=()
while (($#)); do
    case $1 in
        --keep) keep=1 ;;
        --without)
            [[ -n ${2:-} ]] || { echo "chroot-check: --without needs a package name" >&2; exit 2; }
            without+=("$2")
            shift
            ;;
        *)
            echo "chroot-check: unknown argument '$1'; $USAGE" >&2
            exit 2
            ;;
    esac
    shift
done
case $SUITE in
    bookworm) MACHINE=debian12 ;;
    bullseye) MACHINE=debian11 ;;
    *)
        echo "chroot-check: unknown suite '$SUITE' (bookworm or bullseye: the releases this machine's mirror serves)" >&2
        exit 2
        ;;
esac
[[ $(id -u) -eq 0 ]] || {
    echo "chroot-check: needs root (debootstrap, mounts, chroot)" >&2
    exit 2
}
command -v debootstrap >/dev/null || {
    echo "chroot-check: debootstrap is not installed (apt-get install debootstrap)" >&2
    exit 2
}

# shellcheck source=vagrant/debian-mirrors.sh
source "$ROOT/vagrant/debian-mirrors.sh"
read -r MIRROR _ < <(host_mirrors)
BASE="$CACHE/chroot-$SUITE"
RUN="$CACHE/chroot-$SUITE.run"

if [[ ! -x $BASE/bin/bash ]]; then
    echo "==> chroot-check: debootstrap $SUITE from $MIRROR into $BASE"
    rm -rf "$BASE"
    debootstrap --variant=minbase "$SUITE" "$BASE" "$MIRROR"
fi

mounted=()
cleanup() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    # Never delete through a mount that is still there (the host's /dev, /sys).
    if grep -q " ${RUN}[/ ]" /proc/mounts; then
        echo "chroot-check: mounts under $RUN remain; not deleting it" >&2
    elif ((!keep)); then
        rm -rf "$RUN"
    fi
}
trap cleanup EXIT
bind() { # bind SRC DST [opts]: mount and remember it for cleanup
    mkdir -p "$2"
    mount "${@:3}" "$1" "$2"
    mounted+=("$2")
}

echo "==> chroot-check: fresh copy of $BASE"
rm -rf "$RUN"
cp -a "$BASE" "$RUN"
# As the Vagrantfile's rsync: the working tree without .git and build directories.
mkdir -p "$RUN/vagrant"
tar -C "$ROOT" --exclude=./.git --exclude='./build*' -cf - . | tar -C "$RUN/vagrant" -xf -
for p in "${without[@]}"; do
    printf 'Package: %s\nPin: release *\nPin-Priority: -1\n\n' "$p" >>"$RUN/etc/apt/preferences.d/chroot-check-without"
done
# A minbase system has neither; a box has both (the connector tests resolve localhost).
cp /etc/resolv.conf "$RUN/etc/resolv.conf"
[[ -s $RUN/etc/hosts ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$RUN/etc/hosts"
# The chroot's / must be a mount point: `ip netns exec` makes it rslave.
bind "$RUN" "$RUN" --bind
bind proc "$RUN/proc" -t proc
bind /sys "$RUN/sys" --rbind
bind /dev "$RUN/dev" --rbind
bind tmpfs "$RUN/run" -t tmpfs
bind tmpfs "$RUN/tmp" -t tmpfs

echo "==> chroot-check: provision.sh $MACHINE in $RUN"
rc=0
chroot "$RUN" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root TERM=dumb ${NB_VAGRANT_SCENARIOS:+NB_VAGRANT_SCENARIOS="$NB_VAGRANT_SCENARIOS"} \
    bash /vagrant/vagrant/provision.sh "$MACHINE" || rc=$?
echo "==> chroot-check: $SUITE ($MACHINE) exit $rc"
exit "$rc"
