#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine to build and run nbagent, then builds it.
# Idempotent; run as root or with sudo available:
#   scripts/setup.sh            install missing packages, mount bpffs, build build/
#   scripts/setup.sh --no-build only the first two
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR="$ROOT/build"
build=1
[[ ${1:-} == --no-build ]] && build=0

if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null; then
    SUDO=(sudo)
else
    echo "setup.sh: needs root (or sudo) to install packages" >&2
    exit 1
fi
step() { echo "==> setup: $*"; }

# --no-install-recommends matters: wireguard-tools recommends a kernel image.
# linux-libc-dev provides /usr/include/x86_64-linux-gnu/asm/types.h, which clang -target
# bpf needs, so gcc-multilib is not required.
PACKAGES=(
    build-essential cmake pkg-config clang llvm
    libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
    libmnl-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev googletest
    libabsl-dev # the peer index: flat hash set of 4-byte ids (issue 6, idle cost)
    libseccomp-dev # tests/tools/no_bpf: the agent on a "kernel without BPF"
    wireguard-go wireguard-tools iproute2 iputils-ping util-linux jq socat
    gdb # tests/integration/cycles.sh reads the agent's heap in use through it
    # the qemu kernel matrix (vagrant/qemu): VMs, their initramfs, the kernels' modules
    qemu-system-x86 busybox-static cpio kmod xz-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
else
    step "all ${#PACKAGES[@]} packages already installed"
fi

if mountpoint -q /sys/fs/bpf; then
    step "bpffs already mounted on /sys/fs/bpf"
else
    step "mounting bpffs on /sys/fs/bpf"
    "${SUDO[@]}" mount -t bpf bpf /sys/fs/bpf
fi

if ((build)); then
    step "configuring $BUILD_DIR (RelWithDebInfo)"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    step "building $BUILD_DIR"
    cmake --build "$BUILD_DIR" -j "$(nproc)"
    step "done: $BUILD_DIR/cli/nbagent"
fi
