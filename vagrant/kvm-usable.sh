#!/usr/bin/env bash
# Prints the vagrant-libvirt driver this machine can use: "kvm", or "qemu" (TCG) when
# KVM is missing or does not work. The reason goes to stderr. A /dev/kvm that opens is
# not enough: nested KVM can fault once the guest kernel runs (it does here), so a
# kernel is booted under KVM and must print its banner within 15 s. The kernel is the
# host's /boot one, else a local box's (vagrant/boxes/build.sh keeps them), else a
# qemu-matrix kernel; with none, an openable /dev/kvm is taken as working.
# The answer is cached per boot in $NBVM_CACHE/kvm-usable (the Vagrantfile asks on
# every vagrant command).
set -uo pipefail

CACHE=${NBVM_CACHE:-/var/cache/nbagent-vm}
boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null || echo unknown)
cached="$CACHE/kvm-usable"

answer() { # answer DRIVER REASON
    echo "kvm-usable: $1: $2" >&2
    if mkdir -p "$CACHE" 2>/dev/null; then echo "$boot_id $1 $2" >"$cached" 2>/dev/null || true; fi
    echo "$1"
    exit 0
}

if [[ -r $cached ]] && read -r id driver reason <"$cached" && [[ $id == "$boot_id" ]]; then
    echo "kvm-usable: $driver: $reason (cached)" >&2
    echo "$driver"
    exit 0
fi
[[ -r /dev/kvm && -w /dev/kvm ]] || answer qemu "/dev/kvm is missing or not usable by $(id -un)"
command -v qemu-system-x86_64 >/dev/null || answer kvm "/dev/kvm opens; qemu-system-x86_64 is not here to try it"

kernel=""
for k in "/boot/vmlinuz-$(uname -r)" "$CACHE"/boxes/*.vmlinuz "$CACHE"/kernels/*/root/boot/vmlinuz-*; do
    [[ -r $k ]] && kernel=$k && break
done
[[ -n $kernel ]] || answer kvm "/dev/kvm opens; no kernel here to try it with"

# No root file system: a working KVM prints the banner at once, then panics and exits.
out=$(timeout 15 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults -nographic -serial stdio \
    -kernel "$kernel" -append "console=ttyS0 panic=-1" -no-reboot 2>&1 </dev/null)
if grep -q 'Linux version' <<<"$out"; then
    answer kvm "a kernel boots under KVM"
fi
answer qemu "a kernel booted under KVM printed nothing in 15 s ($(basename "$kernel")): KVM faults here"
