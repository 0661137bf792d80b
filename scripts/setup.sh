#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine to build and run nbagent, then builds it.
# Idempotent; run as root (a minimal machine has no sudo), or as a user with sudo:
#   scripts/setup.sh            install missing packages, mount bpffs, build build/
#   scripts/setup.sh --no-build only the first two
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR="$ROOT/build"
build=1
[[ ${1:-} == --no-build ]] && build=0

if [[ $(id -u) -eq 0 ]]; then
    NB_SUDO=
elif command -v sudo >/dev/null; then
    NB_SUDO=sudo
else
    echo "setup.sh: needs root (or sudo) to install packages" >&2
    exit 1
fi
step() { echo "==> setup: $*"; }

# shellcheck source=packages.sh
source "$ROOT/scripts/packages.sh"
PACKAGES=("${NB_PKGS_BUILD[@]}" "${NB_PKGS_TEST[@]}" "${NB_PKGS_SANITIZE[@]}" "${NB_PKGS_MATRIX[@]}"
    "${NB_PKGS_PACKAGE[@]}")

nb_install_missing "${PACKAGES[@]}"

# promtool checks /metrics in the tests. It comes from Debian's prometheus package,
# unpacked rather than installed: installing it would enable a Prometheus server here.
PROMTOOL=/var/cache/nbagent-test/promtool
if [[ -x $PROMTOOL ]] || command -v promtool >/dev/null; then
    step "promtool already there"
else
    step "unpacking promtool from Debian's prometheus package into $PROMTOOL"
    tmp=$(mktemp -d)
    chmod 0755 "$tmp"  # apt-get download drops privileges to _apt where it can
    (cd "$tmp" && { apt-get download prometheus 2>/dev/null ||
        { ${NB_SUDO} apt-get update && apt-get download prometheus; }; })
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
    ${NB_SUDO} install -D -m 0755 "$tmp/usr/bin/promtool" "$PROMTOOL"
    rm -rf "$tmp"
fi

if mountpoint -q /sys/fs/bpf; then
    step "bpffs already mounted on /sys/fs/bpf"
else
    step "mounting bpffs on /sys/fs/bpf"
    ${NB_SUDO} mount -t bpf bpf /sys/fs/bpf
fi

if ((build)); then
    step "configuring and building $BUILD_DIR (RelWithDebInfo, warnings as errors, ccache)"
    bash "$ROOT/scripts/build.sh" "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    step "done: $BUILD_DIR/cli/nbagent"
fi
