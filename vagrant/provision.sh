#!/usr/bin/env bash
# Vagrant provisioner (runs as root in the guest): installs the dependencies of
# scripts/setup.sh with this distribution's package manager, builds the synced
# repository (/vagrant) in /root/nbagent-build and runs the whole test suite there,
# then the kernel feature smoke test. Argument: the machine name, for the log.
# Packages a release does not carry (wireguard-go on older ones, bpftool under another
# name) are installed when available; the tests that need them then skip with a reason.
set -uo pipefail

MACHINE=${1:-unknown}
SRC=/vagrant
BUILD=/root/nbagent-build
LOG=/root/nbagent-test.log
exec > >(tee "$LOG") 2>&1
step() { echo "==> provision $MACHINE: $*"; }

# Prints the packages of "$@" that this apt knows, so optional ones never break install.
apt_available() {
    local p
    for p in "$@"; do
        apt-cache show "$p" >/dev/null 2>&1 && echo "$p"
    done
}

install_apt() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # As scripts/setup.sh, with --no-install-recommends (wireguard-tools recommends a kernel).
    local required=(build-essential cmake pkg-config clang llvm libbpf-dev libelf-dev zlib1g-dev
        linux-libc-dev libmnl-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev libabsl-dev
        wireguard-tools iproute2 iputils-ping util-linux jq socat)
    # bpftool is its own package on Debian 11+ and Ubuntu 24.04, part of linux-tools before.
    local optional=(googletest wireguard-go bpftool "linux-tools-$(uname -r)" linux-tools-common)
    mapfile -t optional < <(apt_available "${optional[@]}")
    apt-get install -y --no-install-recommends "${required[@]}" "${optional[@]}"
}

install_dnf() {
    dnf install -y gcc-c++ make cmake pkgconf-pkg-config clang llvm libbpf-devel \
        elfutils-libelf-devel zlib-devel kernel-headers libmnl-devel cli11-devel spdlog-devel \
        json-devel gtest-devel gmock-devel abseil-cpp-devel wireguard-tools iproute iputils util-linux \
        jq socat \
        bpftool
    # Not packaged everywhere.
    dnf install -y wireguard-go || echo "wireguard-go not available: its tests will skip"
}

step "kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
if command -v apt-get >/dev/null; then
    install_apt || exit 1
elif command -v dnf >/dev/null; then
    install_dnf || exit 1
else
    echo "no apt-get or dnf here"
    exit 1
fi

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

step "building $SRC in $BUILD"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
cmake --build "$BUILD" -j "$(nproc)" || exit 1

# Not CI=true: a package this release lacks should skip its tests, not fail them.
step "ctest"
status=0
(cd "$BUILD" && ctest --output-on-failure -j 2) || status=1

step "kernel features"
bash "$SRC/vagrant/qemu/smoke.sh" "$BUILD" || status=1

step "done (exit $status); log in $LOG"
exit "$status"
