#!/bin/busybox sh
# shellcheck shell=dash
# /init of the matrix VM's initramfs (busybox only). Loads the modules listed in
# /lib/nbvm/order, mounts the host root (9p tag "hostroot", read-only) under a tmpfs
# overlay, mounts the scratch share (9p tag "scratch", writable) on /nbvm inside it,
# runs /nbvm/cmd.sh there in a chroot, writes its exit code to /nbvm/rc and powers
# off. When /nbvm/init says "systemd", systemd runs the command instead (boot_systemd).
# Every line it prints itself starts with "nbvm:".
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

say() { echo "nbvm: $*" >/dev/console; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# Powering off is the only way out: PID 1 exiting would panic the kernel (which,
# with panic=-1 and qemu's -no-reboot, also ends the VM, but says less).
halt() {
    sync
    echo o >/proc/sysrq-trigger
    sleep 5
    poweroff -f
}

die() {
    say "FATAL: $*"
    halt
}

# Writes nbvm.target and its one service into the overlay and hands PID 1 to systemd.
# The service runs /nbvm/cmd.sh on the console, writes its exit code to /nbvm/rc and
# powers off at once, as halt does: the command tests its own units, not the shutdown.
boot_systemd() {
    [ -x $R/lib/systemd/systemd ] || die "--init systemd: no /lib/systemd/systemd on the host root"
    u=$R/etc/systemd/system
    mkdir -p $u
    printf '%s\n' '[Unit]' 'Description=nbvm: the matrix command under systemd' \
        'Requires=basic.target nbvm-command.service' 'After=basic.target nbvm-command.service' \
        >$u/nbvm.target
    printf '%s\n' '[Unit]' 'Description=nbvm: /nbvm/cmd.sh' 'After=basic.target' \
        '[Service]' 'Type=oneshot' 'TimeoutStartSec=infinity' 'StandardInput=null' \
        'StandardOutput=tty' 'StandardError=tty' 'TTYPath=/dev/console' 'TTYReset=no' \
        'TTYVHangup=no' 'ExecStart=/bin/sh /nbvm/systemd-command.sh' >$u/nbvm-command.service
    # shellcheck disable=SC2016 # expanded by the guest's shell, in the service
    printf '%s\n' 'up() { cut -d" " -f1 /proc/uptime; }' \
        'echo "nbvm: root ready after $(up) s (systemd is PID 1: $(cat /proc/1/comm)); running the command"' \
        'start=$(up)' \
        '/bin/bash /nbvm/cmd.sh </dev/null' \
        'rc=$?' \
        'echo "$rc" >/nbvm/rc' \
        'echo "nbvm: command exited with $rc after $(awk -v a="$start" -v b="$(up)" "BEGIN { printf \"%.1f\", b - a }") s"' \
        'sync' \
        'echo o >/proc/sysrq-trigger' >$R/nbvm/systemd-command.sh
    say "handing PID 1 to systemd after $(uptime_s) s"
    # switch_root leaves the initramfs's own /proc, /sys and /dev behind, unreachable.
    umount -l /proc /sys /dev 2>/dev/null
    exec switch_root $R /lib/systemd/systemd --unit=nbvm.target --show-status=error --log-color=no
}

say "kernel $(uname -r) up after $(uptime_s) s"
while read -r m; do
    insmod "/lib/nbvm/$m.ko" || die "insmod $m failed"
done </lib/nbvm/order

mkdir -p /lower /rw /newroot
# msize: 9p's default (8 KiB on 5.10) makes every read of the host's binaries slow.
# cache=loose: the guest keeps what it read in its page cache instead of asking the host
# again at every exec of bash, jq or ip (a row ran 20 % faster). Safe here: nothing
# changes the host's files under a running VM (the guest writes to its overlay only).
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower ||
    die "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
    die "cannot mount the overlay root"

R=/newroot
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
# udev makes these on a real system; bash's <(...) needs /dev/fd.
ln -sf /proc/self/fd $R/dev/fd
ln -sf /proc/self/fd/0 $R/dev/stdin
ln -sf /proc/self/fd/1 $R/dev/stdout
ln -sf /proc/self/fd/2 $R/dev/stderr
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
mount -t bpf bpf $R/sys/fs/bpf || die "cannot mount bpffs"
mount -t cgroup2 cgroup2 $R/sys/fs/cgroup 2>/dev/null
# Not under /run or /tmp: the command's own tmpfs mounts there must not hide it.
mkdir -p $R/nbvm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 scratch $R/nbvm ||
    die "cannot mount the scratch share (9p tag scratch)"
[ -f $R/nbvm/cmd.sh ] || die "no cmd.sh in the scratch share"
# Fresh /run and /tmp, except where the command's directory lives (a CI clone in /tmp):
# there the overlay already makes the host's copy writable.
wd=$(cat $R/nbvm/workdir 2>/dev/null)
for d in run tmp; do
    case "$wd/" in
        /$d/*) say "keeping the host's /$d (overlaid): the command runs in $wd" ;;
        *) mount -t tmpfs -o mode=$([ $d = tmp ] && echo 1777 || echo 755) tmpfs $R/$d ;;
    esac
done

# --init systemd (run-vm.sh): systemd becomes PID 1 on the new root and runs the command
# as a service of a target of its own, so the command sees a booted systemd (systemctl,
# sd_notify, sandboxed units) without the host's multi-user.target (its daemons).
if [ "$(cat $R/nbvm/init 2>/dev/null)" = systemd ]; then
    boot_systemd
fi

say "root ready after $(uptime_s) s; running the command"
start=$(uptime_s)
chroot $R /bin/bash /nbvm/cmd.sh </dev/null >/dev/console 2>&1
rc=$?
echo "$rc" >$R/nbvm/rc
say "command exited with $rc after $(awk -v a="$start" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }') s"
halt
