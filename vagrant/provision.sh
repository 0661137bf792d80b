#!/usr/bin/env bash
# Vagrant provisioner (runs as root in the guest): installs the dependencies of
# scripts/setup.sh with this distribution's package manager, builds the synced
# repository (/vagrant) in /root/nbagent-build and runs the whole test suite there,
# then the kernel feature smoke test. Argument: the machine name, for the log.
# Packages a release does not carry (wireguard-go on older ones, bpftool under another
# name) are installed when available; the tests that need them then skip with a reason.
# With NB_VAGRANT_SCENARIOS set (vagrant/run-matrix.sh sets it), it runs matrix
# scenarios of vagrant/scenarios.sh instead of the suite: see select_scenarios.
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
        # Not `apt-cache show`: it also succeeds for a name only other packages refer to.
        [[ $(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}') =~ ^[^\(] ]] && echo "$p"
    done
}

install_apt() {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    # shellcheck source=../scripts/packages.sh
    source "$SRC/scripts/packages.sh"
    # A package this release lacks is not an error here: top_up_apt supplies what the
    # build needs (CLI11), and the tests that need the rest (wireguard-go) skip with a reason.
    # bpftool is its own package on Debian 11+ and Ubuntu 24.04, part of linux-tools before.
    local wanted=("${NB_PKGS_BUILD[@]}" "${NB_PKGS_TEST[@]}" "linux-tools-$(uname -r)" linux-tools-common
        curl) # top_up_apt fetches what an older release lacks
    local have missing
    mapfile -t have < <(apt_available "${wanted[@]}")
    missing=$(printf '%s\n' "${wanted[@]}" | grep -vxF -f <(printf '%s\n' "${have[@]}") | tr '\n' ' ')
    [[ -z $missing ]] || echo "not packaged in this release: $missing"
    apt_install "${have[@]}"
}

# apt_install PKG...: apt-get install; where the mirror lists an update whose file it
# does not serve (404: partial mirrors and proxies do, this project's machine for some of
# bullseye-security), once more with those packages taken from the release itself
# (NAME/CODENAME: apt then takes their exact-version dependencies from it too).
apt_install() {
    local log failed codename p args=()
    log=$(mktemp)
    # A throwaway machine: dpkg's fsyncs only cost time (minutes under emulation).
    apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "$@" 2>&1 | tee "$log"
    ((PIPESTATUS[0] == 0)) && { rm -f "$log"; return 0; }
    failed=" $(sed -n 's|^E: Failed to fetch .*/\([^/_]*\)_[^/]*\.deb .*|\1|p' "$log" | sort -u | tr '\n' ' ')"
    rm -f "$log"
    [[ $failed != " " ]] || return 1
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    echo "the mirror did not serve:$failed- taking them from $codename itself"
    for p in "$@"; do [[ $failed == *" $p "* ]] || args+=("$p"); done
    for p in $failed; do args+=("$p/$codename"); done # dependencies too, when one failed
    apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-unsafe-io "${args[@]}"
}

install_dnf() {
    dnf install -y gcc-c++ make cmake pkgconf-pkg-config clang llvm libbpf-devel \
        elfutils-libelf-devel zlib-devel kernel-headers libmnl-devel cli11-devel spdlog-devel \
        json-devel gtest-devel gmock-devel abseil-cpp-devel libseccomp-devel wireguard-tools iproute \
        iputils util-linux gdb \
        jq socat \
        bpftool
    # Not packaged everywhere.
    dnf install -y wireguard-go || echo "wireguard-go not available: its tests will skip"
}

# Older releases lack some of what Debian 12 has (CLI11, Abseil, libbpf 1.x, CMake 3.18, C++20
# compilers). Each check is on what is installed, not on a release name; what is missing
# comes from Debian 12's own files (pinned by hash), so every machine builds against
# what scripts/setup.sh builds with.
# Plain http, as apt uses: the pinned hash is what makes a download trusted.
POOL=http://deb.debian.org/debian/pool/main
CLI11_DEB=(c/cli11/libcli11-dev_2.1.2+ds-1_all.deb f1f6ee9ec053e0e0bcec47345e241b6a8ee006321248b4329e9ce88d2b4b64a8)
LIBBPF_SRC=(libb/libbpf/libbpf_1.1.2.orig.tar.gz b50ab60637fb713db78aa98e6ca911ddf13c0799d498a1f6ec03ebffc7dca588)
ABSEIL_SRC=(a/abseil/abseil_20220623.1.orig.tar.gz abfe2897f3a30edaa74bc34365afe3c2a3cd012091a97dc7e008f7016adcd5fe)
HTTPLIB_SRC=(c/cpp-httplib/cpp-httplib_0.11.4+ds.orig.tar.xz 8b1a5df569003b6a4f24c68489bbda5c64aec94697bdc9ebba5d79408b2ae7eb)
LIBBPF_MIN=1.1.0
CMAKE_MIN=3.18 # CMakeLists.txt's cmake_minimum_required
CMAKE_ARGS=()  # for nbagent's configure step

version_lt() { dpkg --compare-versions "$1" lt "$2"; }

# fetch POOL_PATH SHA256 FILE: downloads one file of Debian's pool and checks its hash.
fetch() {
    curl -fsSL --retry 3 -o "$3" "$POOL/$1" || return 1
    echo "$2  $3" | sha256sum -c --quiet - || { echo "hash mismatch for $1" >&2; return 1; }
}

# fetch_src POOL_PATH SHA256 DIR: the same for a source tarball, unpacked into DIR.
fetch_src() {
    fetch "$1" "$2" "$3.tar.gz" || return 1
    rm -rf "$3" && mkdir -p "$3" && tar -C "$3" --strip-components=1 -xf "$3.tar.gz" # any compression
}

top_up_apt() {
    local work=/root/nbagent-deps v
    mkdir -p "$work"
    # Compilers first: what is built below must use the same one as nbagent.
    v=$(g++ -dumpversion | cut -d. -f1)
    if ((v < 10)); then
        step "g++ $v has no C++20: g++-10"
        apt-get install -y --no-install-recommends g++-10 || return 1
        export CC=gcc-10 CXX=g++-10
    fi
    v=$(clang -dumpversion | cut -d. -f1)
    if ((v < 11)); then # 11 is what Debian 11 builds the BPF programs with
        step "clang $v is older than any tested for the BPF programs: clang-12"
        apt-get install -y --no-install-recommends clang-12 llvm-12 || return 1
        CMAKE_ARGS+=(-DBPF_CLANG=/usr/bin/clang-12)
    fi
    v=$(cmake --version | awk 'NR==1 {print $3}')
    if version_lt "$v" "$CMAKE_MIN"; then
        step "CMake $v < $CMAKE_MIN: CMake from PyPI into /usr/local"
        apt-get install -y --no-install-recommends python3-pip && pip3 install "cmake>=$CMAKE_MIN" || return 1
        hash -r
    fi
    if [[ ! -f /usr/include/CLI/CLI.hpp ]]; then
        step "CLI11 is not packaged here: Debian 12's libcli11-dev (headers only)"
        fetch "${CLI11_DEB[@]}" "$work/cli11.deb" && dpkg -i "$work/cli11.deb" || return 1
    fi
    if ! compgen -G '/usr/lib/*/cmake/absl/abslConfig.cmake' >/dev/null &&
        [[ ! -f /usr/local/lib/cmake/absl/abslConfig.cmake ]]; then
        step "Abseil is not packaged here: building Debian 12's Abseil into /usr/local"
        fetch_src "${ABSEIL_SRC[@]}" "$work/abseil" || return 1
        cmake -S "$work/abseil" -B "$work/abseil/build" -DCMAKE_BUILD_TYPE=Release \
            -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_LIBDIR=lib \
            -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DCMAKE_CXX_STANDARD=20 -DABSL_PROPAGATE_CXX_STD=ON \
            -DBUILD_TESTING=OFF >/dev/null &&
            cmake --build "$work/abseil/build" -j "$(nproc)" >/dev/null &&
            cmake --install "$work/abseil/build" >/dev/null || return 1
    fi
    if ! pkg-config --exists cpp-httplib; then
        # The etcd client needs it (Debian 11 lacks it). Debian 12's is a compiled library;
        # the same source used header-only, with a .pc file saying so, builds the same code.
        step "cpp-httplib is not packaged here: Debian 12's, header-only, into /usr/local"
        fetch_src "${HTTPLIB_SRC[@]}" "$work/httplib" || return 1
        install -D -m 0644 "$work/httplib/httplib.h" /usr/local/include/httplib.h
        mkdir -p /usr/local/lib/pkgconfig
        printf '%s\n' 'prefix=/usr/local' 'includedir=${prefix}/include' '' 'Name: cpp-httplib' \
            "Description: cpp-httplib, header-only (Debian 12's source; vagrant/provision.sh)" \
            'Version: 0.11.4' 'Requires: openssl >= 1.1.1' 'Libs: -pthread' \
            'Cflags: -I${includedir} -DCPPHTTPLIB_OPENSSL_SUPPORT' >/usr/local/lib/pkgconfig/cpp-httplib.pc
    fi
    v=$(pkg-config --modversion libbpf 2>/dev/null || echo 0)
    if version_lt "$v" "$LIBBPF_MIN"; then
        step "libbpf $v < $LIBBPF_MIN: building Debian 12's libbpf into /usr/local"
        fetch_src "${LIBBPF_SRC[@]}" "$work/libbpf" || return 1
        make -C "$work/libbpf/src" -j "$(nproc)" PREFIX=/usr/local LIBDIR=/usr/local/lib \
            install install_uapi_headers >/dev/null || return 1
        ldconfig
        echo "libbpf now $(pkg-config --modversion libbpf)"
    fi
}

step "kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
if command -v apt-get >/dev/null; then
    install_apt || exit 1
    top_up_apt || exit 1
elif command -v dnf >/dev/null; then
    install_dnf || exit 1
else
    echo "no apt-get or dnf here"
    exit 1
fi

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

# The matrix mode: NB_VAGRANT_SCENARIOS names scenarios of vagrant/scenarios.sh (the
# qemu matrix's list), as NAME or NAME:WG, space-separated, or "all". Only what they run
# is built, and ctest is left to the suite mode: under emulation (no KVM) the whole
# suite takes hours. Results go to $RESULTS, as run-scenarios.sh writes them.
RESULTS=/root/nbagent-results
SCENARIO_SPECS=()
targets=(all)
if [[ -n ${NB_VAGRANT_SCENARIOS:-} ]]; then
    # shellcheck source=scenarios.sh
    source "$SRC/vagrant/scenarios.sh"
    # shellcheck disable=SC2086 # the words are the filter
    mapfile -t SCENARIO_SPECS < <(select_specs $NB_VAGRANT_SCENARIOS)
    ((${#SCENARIO_SPECS[@]})) || {
        echo "NB_VAGRANT_SCENARIOS='$NB_VAGRANT_SCENARIOS' names no scenario of vagrant/scenarios.sh"
        exit 1
    }
    mapfile -t targets < <(spec_targets "${SCENARIO_SPECS[@]}")
    # -O1 without debug info compiles in half the time of -O2 -g, which under emulation
    # (no KVM) is most of a machine's hour; the scenarios test behaviour, not speed.
    CMAKE_ARGS+=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -DNDEBUG")
fi

step "building $SRC in $BUILD (targets: ${targets[*]})"
cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${CMAKE_ARGS[@]}" || exit 1
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}" || exit 1

status=0
if ((${#SCENARIO_SPECS[@]})); then
    step "scenarios: ${SCENARIO_SPECS[*]%%:*}"
    : >"$RESULTS"
    bash "$SRC/vagrant/qemu/run-scenarios.sh" --kernel "$MACHINE $(uname -r)" --build "$BUILD" \
        --results "$RESULTS" "${SCENARIO_SPECS[@]}" || status=1
    step "done (exit $status); results in $RESULTS, log in $LOG"
    exit "$status"
fi

# Not CI=true: a package this release lacks should skip its tests, not fail them.
step "ctest"
(cd "$BUILD" && ctest --output-on-failure -j 2) || status=1

step "kernel features"
bash "$SRC/vagrant/qemu/smoke.sh" "$BUILD" || status=1

step "done (exit $status); log in $LOG"
exit "$status"
