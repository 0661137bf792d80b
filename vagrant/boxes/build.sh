#!/usr/bin/env bash
# Builds the Vagrant matrix's libvirt boxes here, from Debian's packages only (public
# boxes cannot be downloaded on a machine that reaches nothing but Debian's mirror):
#   vagrant/boxes/build.sh [--force] [BOX...]
# BOX: debian11 (bullseye, its 5.10 kernel), debian12 (bookworm, 6.1) and debian12-6.12
# (bookworm with its 6.12 kernel from bookworm-security: a kernel newer than the release
# is a box variant). Default: all three. Prints one "box NAME FILE" line per box.
#
# A box is what Vagrant's libvirt provider documents: a tar of box.img (qcow2, one
# bootable MBR partition, GRUB), metadata.json and a Vagrantfile. Inside: debootstrap's
# standard system of the release, the release's own kernel, ifupdown DHCP on eth0
# (net.ifnames=0), sshd, rsync (the synced folder), and the user vagrant with
# Vagrant's documented insecure key (from the installed Vagrant) and password-less sudo.
# Nothing of nbagent's: provision.sh installs that, as on a public box.
#
# Idempotent: a box is rebuilt only when missing, when this script changed since it was
# built, or with --force. Everything lives outside the tree, in $NBVM_CACHE/boxes
# (default /var/cache/nbagent-vm/boxes), with each release's downloaded packages kept for
# the next build. Beside each box: NAME.vmlinuz, its kernel (vagrant/kvm-usable.sh boots
# it to see whether KVM works), and NAME.build.log, the build's output. Needs root (loop
# device, mounts, chroot), debootstrap, qemu-img (qemu-utils), sfdisk (fdisk) and Vagrant
# (for its key).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${NBVM_CACHE:-/var/cache/nbagent-vm}/boxes
ALL_BOXES=(debian11 debian12 debian12-6.12)
declare -A SUITE=([debian11]=bullseye [debian12]=bookworm [debian12-6.12]=bookworm)
declare -A KERNEL=([debian11]=linux-image-amd64 [debian12]=linux-image-amd64 [debian12-6.12]=linux-image-6.12-amd64)
DISK_GB=20 # the guest builds nbagent: a few GB; qcow2 keeps the unused rest sparse
# What a box has beyond debootstrap's standard system: boot, network, and Vagrant's needs.
BOX_PKGS=(grub-pc initramfs-tools ifupdown isc-dhcp-client openssh-server sudo rsync dbus
    ca-certificates)

die() {
    echo "boxes/build.sh: $*" >&2
    exit 1
}
log() { echo "==> boxes: $*" >&2; }

force=0
boxes=()
for a in "$@"; do
    case $a in
        --force) force=1 ;;
        -h | --help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) die "unknown option $a" ;;
        *)
            [[ -n ${SUITE[$a]:-} ]] || die "unknown box '$a' (known: ${ALL_BOXES[*]})"
            boxes+=("$a")
            ;;
    esac
done
((${#boxes[@]})) || boxes=("${ALL_BOXES[@]}")
[[ $(id -u) -eq 0 ]] || die "needs root (loop device, mounts, chroot)"
for tool in debootstrap qemu-img sfdisk losetup; do
    command -v "$tool" >/dev/null || die "$tool is not installed (vagrant/run-matrix.sh installs it: NB_PKGS_VAGRANT)"
done
VAGRANT_KEY=$(dpkg -L vagrant 2>/dev/null | grep '/keys/vagrant\.pub$' | head -n 1 || true)
[[ -r $VAGRANT_KEY ]] || die "Vagrant's insecure public key not found (is the vagrant package installed?)"

# shellcheck source=vagrant/debian-mirrors.sh
source "$HERE/../debian-mirrors.sh"
read -r MIRROR SECURITY < <(host_mirrors)
STAMP=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)

# State of the box being built, for cleanup on any exit.
LOOP="" MOUNTS=()
cleanup() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do umount -l "${MOUNTS[i]}" 2>/dev/null || true; done
    MOUNTS=()
    [[ -z $LOOP ]] || losetup -d "$LOOP" 2>/dev/null || true
    LOOP=""
}
# The build's own output (debootstrap, apt, GRUB) goes to NAME.build.log beside the box;
# the log's end is shown when the build fails.
BUILD_LOG=""
on_exit() {
    local rc=$?
    cleanup
    if ((rc != 0)) && [[ -n $BUILD_LOG ]]; then
        echo "boxes/build.sh: failed; the end of $BUILD_LOG:" >&2
        tail -n 30 "$BUILD_LOG" >&2
    fi
}
trap on_exit EXIT
mnt() { # mnt DST MOUNT-ARGS...: mount and remember it
    mkdir -p "$1"
    mount "${@:2}" "$1"
    MOUNTS+=("$1")
}
in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

# The guest's apt sources: the release, its updates and its security suite.
write_sources() {
    local suite=$1
    {
        echo "deb $MIRROR $suite main"
        echo "deb $MIRROR $suite-updates main"
        echo "deb $SECURITY $suite-security main"
    } >"$ROOTFS/etc/apt/sources.list"
}

# The disk: a sparse raw image with one bootable partition, on a loop device.
make_disk() {
    local disk=$1 part
    rm -f "$disk"
    truncate -s "${DISK_GB}G" "$disk"
    printf 'label: dos\nstart=2048, type=83, bootable\n' | sfdisk -q "$disk"
    LOOP=$(losetup -P --show -f "$disk")
    part="${LOOP}p1"
    # Some containers do not scan a loop device's partitions by themselves.
    [[ -b $part ]] || partx -a "$LOOP" 2>/dev/null || true
    for _ in $(seq 50); do [[ -b $part ]] && break; sleep 0.1; done
    [[ -b $part ]] || die "no partition device $part (loop devices without partition scanning?)"
    mkfs.ext4 -q -L nbroot "$part"
    mnt "$ROOTFS" "$part"
}

# Boot, network, the vagrant user: what makes the chroot a box.
configure() {
    local name=$1 suite=$2 kernel=$3
    echo "nbagent-$name" >"$ROOTFS/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tnbagent-%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' \
        "$name" >"$ROOTFS/etc/hosts"
    echo 'LABEL=nbroot / ext4 errors=remount-ro 0 1' >"$ROOTFS/etc/fstab"
    printf 'auto lo\niface lo inet loopback\n\nallow-hotplug eth0\niface eth0 inet dhcp\n' \
        >"$ROOTFS/etc/network/interfaces"
    write_sources "$suite"
    mnt "$ROOTFS/proc" -t proc proc
    mnt "$ROOTFS/sys" --rbind /sys
    mnt "$ROOTFS/dev" --rbind /dev
    in_root apt-get update -q
    # GRUB goes onto the loop device below; its postinst must not ask where.
    echo 'grub-pc grub-pc/install_devices multiselect' | in_root debconf-set-selections
    in_root apt-get install -y -q --no-install-recommends "$kernel" "${BOX_PKGS[@]}"
    cat >"$ROOTFS/etc/default/grub" <<'GRUB'
GRUB_DEFAULT=0
GRUB_TIMEOUT=0
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
# The build sees the root as a loop device and has no udev links: name it by label.
GRUB_DEVICE=LABEL=nbroot
GRUB_DISABLE_LINUX_UUID=true
GRUB
    in_root grub-install --target=i386-pc "$LOOP"
    in_root update-grub
    grep -q 'root=LABEL=nbroot' "$ROOTFS/boot/grub/grub.cfg" || die "$name: grub.cfg does not boot LABEL=nbroot"
    # The vagrant user, as Vagrant's box documentation asks.
    in_root useradd -m -s /bin/bash -G sudo vagrant
    echo 'vagrant:vagrant' | in_root chpasswd
    echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$ROOTFS/etc/sudoers.d/vagrant"
    chmod 0440 "$ROOTFS/etc/sudoers.d/vagrant"
    install -d -m 0700 "$ROOTFS/home/vagrant/.ssh"
    install -m 0600 "$VAGRANT_KEY" "$ROOTFS/home/vagrant/.ssh/authorized_keys"
    in_root chown -R vagrant:vagrant /home/vagrant/.ssh
    echo 'UseDNS no' >"$ROOTFS/etc/ssh/sshd_config.d/vagrant.conf"
    # Every VM from the box gets its own machine-id (DHCP, journald) and SSH host keys.
    : >"$ROOTFS/etc/machine-id"
    rm -f "$ROOTFS"/etc/ssh/ssh_host_*
    mkdir -p "$ROOTFS/etc/systemd/system/ssh.service.d"
    printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
        >"$ROOTFS/etc/systemd/system/ssh.service.d/host-keys.conf"
    in_root apt-get clean
}

# The .box: qcow2 image, metadata and a Vagrantfile, as a plain tar.
pack() {
    local name=$1 work=$2 vmlinuz
    vmlinuz=$(find "$ROOTFS/boot" -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
    [[ -n $vmlinuz ]] || die "$name: no kernel in /boot"
    cp "$vmlinuz" "$CACHE/$name.vmlinuz"
    cleanup
    qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
    rm -f "$work/disk.raw"
    printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %d}\n' "$DISK_GB" >"$work/metadata.json"
    printf 'Vagrant.configure("2") do |config|\n  config.vm.provider :libvirt do |lv|\n    lv.disk_bus = "virtio"\n  end\nend\n' \
        >"$work/Vagrantfile"
    tar -C "$work" -cf "$CACHE/$name.box.part" metadata.json Vagrantfile box.img
    mv "$CACHE/$name.box.part" "$CACHE/$name.box"
    echo "$STAMP $(basename "$vmlinuz")" >"$CACHE/$name.stamp"
    rm -rf "$work"
}

build_box() {
    local name=$1 suite=${SUITE[$1]} kernel=${KERNEL[$1]} work="$CACHE/$1.work" t0=$SECONDS
    ROOTFS="$work/root"
    rm -rf "$work"
    mkdir -p "$work" "$CACHE/debs-$suite"
    BUILD_LOG="$CACHE/$name.build.log"
    log "$name: debootstrap $suite from $MIRROR (output in $BUILD_LOG)"
    make_disk "$work/disk.raw" >"$BUILD_LOG" 2>&1
    debootstrap --cache-dir="$CACHE/debs-$suite" "$suite" "$ROOTFS" "$MIRROR" >>"$BUILD_LOG" 2>&1
    log "$name: $kernel, GRUB, sshd, the vagrant user"
    configure "$name" "$suite" "$kernel" >>"$BUILD_LOG" 2>&1
    pack "$name" "$work" >>"$BUILD_LOG" 2>&1
    BUILD_LOG=""
    log "$name: built in $((SECONDS - t0)) s ($(du -h "$CACHE/$name.box" | cut -f1))"
}

mkdir -p "$CACHE"
for name in "${boxes[@]}"; do
    if ((force)) || [[ ! -f $CACHE/$name.box || $(cut -d' ' -f1 "$CACHE/$name.stamp" 2>/dev/null) != "$STAMP" ]]; then
        build_box "$name"
    else
        log "$name: up to date ($CACHE/$name.box)"
    fi
    echo "box $name $CACHE/$name.box"
done
