#!/usr/bin/env bash
# Downloads and unpacks the Debian kernels the qemu matrix boots, without installing
# them on the host:
#   fetch-kernels.sh [SERIES...]     SERIES: 5.10 (bullseye), 6.1 (bookworm), 6.12
#                                    (bookworm-security); default: all three
# The newest unsigned -amd64 image of each series is resolved with apt-cache at run time.
# Everything lives in a cache outside the repo, reused by later runs:
#   $NBVM_CACHE (default /var/cache/nbagent-vm)/
#     apt-bullseye/   apt state for bullseye (own sources list, lists, archives)
#     debs/           downloaded .deb files
#     kernels/SERIES/ root/ (the unpacked package, with modules.dep), package (name=version)
# Prints one "kernel SERIES PACKAGE=VERSION DIR" line per series. Needs root only for
# the default cache directory; never touches the host's apt configuration.
set -euo pipefail

CACHE=${NBVM_CACHE:-/var/cache/nbagent-vm}
ALL_SERIES=(5.10 6.1 6.12)

die() {
    echo "fetch-kernels.sh: $*" >&2
    exit 1
}
log() { echo "fetch-kernels.sh: $*" >&2; }

# shellcheck source=vagrant/debian-mirrors.sh
source "$(dirname "${BASH_SOURCE[0]}")/../debian-mirrors.sh"

# apt options for the private bullseye state: own sources, lists, cache and status, so
# the host's apt never sees bullseye.
BULLSEYE_APT=()
bullseye_apt_init() {
    local dir="$CACHE/apt-bullseye" main sec
    read -r main sec < <(host_mirrors)
    mkdir -p "$dir/lists/partial" "$dir/archives/partial" "$dir/etc/preferences.d" "$dir/etc/sources.list.d"
    touch "$dir/status"
    cat >"$dir/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $main bullseye main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $sec bullseye-security main
SRC
    BULLSEYE_APT=(
        -o "Dir::Etc::SourceList=$dir/etc/sources.list"
        -o "Dir::Etc::SourceParts=$dir/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$dir/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
        -o "Dir::State::Lists=$dir/lists"
        -o "Dir::State::status=$dir/status"
        -o "Dir::Cache=$dir"
        -o "Dir::Cache::archives=$dir/archives"
        -o "Debug::NoLocking=1"
        -o "APT::Architecture=amd64"
        -o "APT::Architectures::=amd64"
    )
    # Lists older than a day are refreshed; a fresh cache needs them once.
    if [[ -z $(find "$dir/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 -print -quit) ]]; then
        log "updating the private bullseye apt lists ($main, $sec)"
        apt-get "${BULLSEYE_APT[@]}" update >&2 || die "apt-get update for bullseye failed"
    fi
}

# The host's lists go stale on a long-lived machine; refresh them when older than a day.
host_apt_init() {
    if [[ -z $(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -1 -print -quit 2>/dev/null) ]]; then
        log "updating the host's apt lists"
        apt-get update >&2 || die "apt-get update failed"
    fi
}

# Package-name pattern of the plain (not rt, not cloud) unsigned image of a series.
series_pattern() {
    case $1 in
        5.10) echo '^linux-image-5\.10\.[0-9]+-[0-9]+-amd64-unsigned$' ;;
        6.1) echo '^linux-image-6\.1\.[0-9]+-[0-9]+-amd64-unsigned$' ;;
        6.12) echo '^linux-image-6\.12\.[0-9]+(\+deb[0-9]+)?-amd64-unsigned$' ;;
        *) die "unknown kernel series '$1' (known: ${ALL_SERIES[*]})" ;;
    esac
}

fetch_series() {
    local series=$1 pattern apt=() pkg version deb dest
    pattern=$(series_pattern "$series")
    if [[ $series == 5.10 ]]; then
        bullseye_apt_init
        apt=("${BULLSEYE_APT[@]}")
    else
        host_apt_init
    fi
    # pkgnames also lists names only some package provides: keep those with a candidate.
    pkg=""
    local name policy
    while read -r name; do
        policy=$(apt-cache "${apt[@]}" policy "$name")
        if grep -q 'Candidate: [^(]' <<<"$policy"; then
            pkg=$name
            break
        fi
    done < <(apt-cache "${apt[@]}" pkgnames linux-image- | grep -E "$pattern" | sort -rV)
    [[ -n $pkg ]] || die "no package matching $pattern in apt's lists for series $series"
    version=$(apt-cache "${apt[@]}" policy "$pkg" | awk '/Candidate:/ { print $2 }')
    dest="$CACHE/kernels/$series"
    if [[ -f $dest/package && $(cat "$dest/package") == "$pkg=$version" && -d $dest/root/boot ]]; then
        echo "kernel $series $pkg=$version $dest/root"
        return
    fi
    mkdir -p "$CACHE/debs"
    deb="$CACHE/debs/${pkg}_${version//:/%3a}_amd64.deb"
    if [[ ! -f $deb ]]; then
        log "downloading $pkg=$version"
        # apt drops privileges to _apt for downloads, which cannot write a root-owned
        # cache; the download is still verified against the signed lists.
        (cd "$CACHE/debs" && apt-get "${apt[@]}" -o APT::Sandbox::User=root download "$pkg=$version" >&2) ||
            die "apt-get download $pkg=$version failed"
        [[ -f $deb ]] || die "apt-get download left no $deb"
    fi
    log "unpacking $(basename "$deb")"
    rm -rf "$dest"
    mkdir -p "$dest"
    dpkg-deb -x "$deb" "$dest/root.tmp" || die "dpkg-deb -x $deb failed"
    # The package ships no modules.dep (its postinst runs depmod): build it here.
    local kver
    kver=$(basename "$(find "$dest/root.tmp/lib/modules" -mindepth 1 -maxdepth 1 -type d -print -quit)")
    [[ -n $kver ]] || die "$deb has no lib/modules/VERSION"
    depmod -b "$dest/root.tmp" -F "$dest/root.tmp/boot/System.map-$kver" "$kver" ||
        die "depmod for $kver failed"
    mv "$dest/root.tmp" "$dest/root"
    echo "$pkg=$version" >"$dest/package"
    # Older images of this series are no longer needed.
    local old
    for old in "$CACHE"/debs/*.deb; do
        [[ $old != "$deb" ]] && grep -qE "$pattern" <<<"$(basename "${old%%_*}")" && rm -f "$old"
    done
    echo "kernel $series $pkg=$version $dest/root"
}

series=("$@")
((${#series[@]})) || series=("${ALL_SERIES[@]}")
command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu host)"
mkdir -p "$CACHE" || die "cannot create $CACHE (set NBVM_CACHE or run as root)"
for s in "${series[@]}"; do
    fetch_series "$s"
done
