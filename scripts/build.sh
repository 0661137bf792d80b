#!/usr/bin/env bash
# Configures and builds one build directory the way development and CI build:
#   scripts/build.sh DIR [CMAKE_ARGS...]
# Warnings are errors here (NB_WERROR=ON; a plain `cmake` leaves them warnings), and
# compiles go through ccache when it is installed, with its cache outside the tree
# (NB_CCACHE_DIR, default /var/cache/nbagent-ccache), shared by every clone on the
# machine: CI runs in a fresh clone each time.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ $# -ge 1 ]] || {
    echo "usage: scripts/build.sh DIR [CMAKE_ARGS...]" >&2
    exit 2
}
dir=$1
shift

launcher=()
if command -v ccache >/dev/null; then
    export CCACHE_DIR=${NB_CCACHE_DIR:-/var/cache/nbagent-ccache}
    # Paths inside the clone are hashed relative to it and the working directory is left
    # out of the hash, so a new clone in another folder hits the cache of the last one.
    export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=1 CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-8G}
    mkdir -p "$CCACHE_DIR"
    launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

cmake -S "$ROOT" -B "$dir" -DNB_WERROR=ON "${launcher[@]}" "$@"
cmake --build "$dir" -j "$(nproc)"
