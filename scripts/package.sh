#!/usr/bin/env bash
# The Debian package, built and checked the way issue 19 asks:
#   1. dpkg-buildpackage -b -us -uc on a copy of the committed tree (the source as a
#      packager gets it, nothing of a local build);
#   2. lintian on the .deb: no error (warnings are printed);
#   3. in a Debian 12 chroot (debootstrap, cached): install it with its dependencies,
#      then dpkg -r and dpkg -P, each leaving what Debian policy says it must.
#   scripts/package.sh [--out DIR] [--no-chroot] [--strict]
# --strict (CI): the package is built with -Werror and CMake's Release -O3 after Debian's
# flags, so a warning the compiler finds only there fails CI, never a packager's build.
# The .deb ends up in DIR (default build-deb/). Compiles go through ccache as in
# scripts/build.sh; the copy is always at the same path so the cache hits.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/build-deb
CHROOT=1
while (($#)); do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --no-chroot) CHROOT=0; shift ;;
        --strict) export NB_DEB_CMAKE_ARGS="-DNB_WERROR=ON -DCMAKE_BUILD_TYPE=Release"; shift ;;
        *) echo "usage: scripts/package.sh [--out DIR] [--no-chroot] [--strict]" >&2; exit 2 ;;
    esac
done
CACHE=${NB_TEST_CACHE:-/var/cache/nbagent-test}
log() { echo "package.sh: $*"; }

# 1. Build from a copy of HEAD's tree.
version=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
work=$CACHE/pkg-src
src=$work/nbagent-$version
rm -rf "$work"
mkdir -p "$src" "$OUT"
git -C "$ROOT" archive HEAD | tar -x -C "$src"
if command -v ccache >/dev/null; then
    export CCACHE_DIR=${NB_CCACHE_DIR:-/var/cache/nbagent-ccache} CCACHE_BASEDIR=$src CCACHE_NOHASHDIR=1
    export CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache
fi
log "dpkg-buildpackage -b -us -uc in $src"
(cd "$src" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -b -us -uc) >"$OUT/dpkg-buildpackage.log" 2>&1 || {
    tail -n 40 "$OUT/dpkg-buildpackage.log"
    log "FAIL: dpkg-buildpackage (log: $OUT/dpkg-buildpackage.log)"
    exit 1
}
deb=$(ls "$work"/nbagent_"$version"_*.deb)
cp "$deb" "$work"/*.buildinfo "$work"/*.changes "$OUT/"
deb=$OUT/$(basename "$deb")
log "PASS: built $deb"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's/^\.//' >"$OUT/contents.txt"
for f in /usr/sbin/nbagent /lib/systemd/system/nbagent@.service /usr/share/man/man8/nbagent.8.gz \
    /usr/share/bash-completion/completions/nbagent /usr/share/doc/nbagent/copyright \
    /usr/share/doc/nbagent/examples/settings.conf /etc/nbagent/; do
    grep -qx -- "$f" "$OUT/contents.txt" || { log "FAIL: $f is not in the package"; exit 1; }
done
log "PASS: binary, unit, man page, completion, docs and /etc/nbagent are in it"
dpkg-deb -f "$deb" Depends | tee "$OUT/depends.txt" | sed 's/^/package.sh: Depends: /'

# 2. lintian: errors fail, warnings are shown.
lintian --fail-on error --display-info "$deb" | tee "$OUT/lintian.txt" || {
    log "FAIL: lintian reports errors"
    exit 1
}
log "PASS: lintian: $(grep -c '^E:' "$OUT/lintian.txt" || true) errors, $(grep -c '^W:' "$OUT/lintian.txt" || true) warnings"

# 3. Install, remove, purge in a Debian 12 chroot.
((CHROOT)) || exit 0
root=$CACHE/chroot-bookworm
if [[ ! -x $root/usr/bin/apt-get ]]; then
    log "debootstrap bookworm into $root (once)"
    rm -rf "$root"
    debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$OUT/debootstrap.log" 2>&1 || {
        tail -n 20 "$OUT/debootstrap.log"
        log "FAIL: debootstrap"
        exit 1
    }
fi
mounted=()
cleanup() { local m; for m in "${mounted[@]}"; do umount "$m" 2>/dev/null || true; done; }
trap cleanup EXIT
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
in_root dpkg -P nbagent >/dev/null 2>&1 || true  # left by a run that stopped half-way
cp "$deb" "$root/tmp/"
in_root apt-get update -qq >"$OUT/chroot-apt.log" 2>&1
in_root apt-get install -y -qq --no-install-recommends "/tmp/$(basename "$deb")" >>"$OUT/chroot-apt.log" 2>&1 || {
    tail -n 20 "$OUT/chroot-apt.log"
    log "FAIL: installing the package in the chroot"
    exit 1
}
in_root nbagent --version | sed 's/^/package.sh: in the chroot: /'
in_root nbagent features >/dev/null || { log "FAIL: nbagent features in the chroot"; exit 1; }
[[ -d $root/etc/nbagent && -f $root/lib/systemd/system/nbagent@.service ]] || { log "FAIL: not installed as listed"; exit 1; }
log "PASS: dpkg -i (apt with its dependencies) in a Debian 12 chroot; nbagent runs there"
in_root dpkg -r nbagent >>"$OUT/chroot-apt.log" 2>&1 || { log "FAIL: dpkg -r"; exit 1; }
[[ ! -e $root/usr/sbin/nbagent && ! -e $root/lib/systemd/system/nbagent@.service ]] || { log "FAIL: dpkg -r left files"; exit 1; }
in_root dpkg -P nbagent >>"$OUT/chroot-apt.log" 2>&1 || { log "FAIL: dpkg -P"; exit 1; }
[[ -z $(in_root dpkg -l nbagent 2>/dev/null | awk '/^[a-z][a-z] +nbagent/ {print $1}' | grep -v '^un') ]] ||
    { log "FAIL: dpkg still knows nbagent after dpkg -P"; exit 1; }
[[ ! -e $root/etc/nbagent ]] || { log "FAIL: /etc/nbagent left after dpkg -P"; exit 1; }
log "PASS: dpkg -r removed the files, dpkg -P purged the rest"
