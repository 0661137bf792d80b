#!/usr/bin/env bash
# The include rule of docs/design.md ("Layers"): a source file includes only from its own
# layer or one below it. Bottom to top:
#   base < base/net < bpf < loader < agent/debug < agent/wg < agent/etcd < agent/fleet
#        < agent/connector < agent/config < agent/lazy < agent/activity < agent/control
#        < agent/metrics < agent/engine < cli
# (tests/ and bench/ sit on top and may include anything). Known arrows that still point
# up would be listed in ALLOWED with the issue that removes them (none is); an entry
# that no longer matches is an error too, so the list only shrinks.
#   scripts/check-layers.sh [--root DIR]
# Exit 0: no upward include; 1: some (each printed as file:line).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ ${1:-} == --root ]] && root=${2:?}
cd "$root" || exit 2

LAYERS=(base/net base bpf loader agent/debug agent/wg agent/etcd agent/fleet agent/connector
    agent/config agent/lazy agent/activity agent/control agent/metrics agent/engine cli)
RANKS=(1 0 2 3 4 5 6 7 8 9 10 11 12 13 14 15) # base/net before base: longest prefix first

# "FILE -> INCLUDE" arrows allowed to point up, each with the issue that removes it.
# Empty: every upward arrow is an error.
ALLOWED=()

# rank PATH: the layer rank of a path in the tree, or nothing outside the layers.
rank() {
    local i
    for i in "${!LAYERS[@]}"; do
        [[ $1 == "${LAYERS[$i]}"/* || $1 == "${LAYERS[$i]}".* ]] && { echo "${RANKS[$i]}"; return; }
    done
}

declare -A allowed_seen=()
status=0
while IFS= read -r file; do
    from=$(rank "$file")
    [[ -n $from ]] || continue
    while IFS=: read -r line inc; do
        to=$(rank "$inc")
        [[ -n $to ]] && ((to > from)) || continue
        arrow="$file -> $inc"
        ok=0
        for a in "${ALLOWED[@]}"; do [[ $a == "$arrow" ]] && ok=1; done
        if ((ok)); then
            allowed_seen[$arrow]=1
        else
            echo "$file:$line: includes $inc, a layer above it (docs/design.md, Layers)"
            status=1
        fi
    done < <(grep -n '^#include "' "$file" | sed 's/^\([0-9]*\):#include "\([^"]*\)".*/\1:\2/')
done < <(find base bpf loader agent cli -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.hpp' \) 2>/dev/null | sort)
for a in "${ALLOWED[@]}"; do
    [[ -n ${allowed_seen[$a]:-} ]] && continue
    echo "scripts/check-layers.sh: ALLOWED has '$a', which no longer exists: remove it"
    status=1
done
((status == 0)) && echo "layers: no include points up"
exit "$status"
