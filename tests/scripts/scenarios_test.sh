#!/usr/bin/env bash
# The matrices' scenario list (vagrant/scenarios.sh) is sound: each entry has a known
# WireGuard and attach mode and CI rows that are rows of the matrix, each command runs a
# script or a test binary the tree has, and the Vagrant machines' pick from it
# (select_specs, spec_targets) gives what they ask for, and tested_tree names a tree as
# its results should.
#   scenarios_test.sh ROOT [SCENARIOS_FILE]
set -uo pipefail
root=$1 file=${2:-$1/vagrant/scenarios.sh}
# shellcheck source=../../vagrant/scenarios.sh
source "$file" || { echo "FAIL: cannot source $file"; exit 1; }
status=0
bad() { echo "FAIL: $*"; status=1; }

declare -A seen=()
entries=("${SCENARIOS[@]}")
for spec in "${LONG_RUNS[@]}"; do entries+=("all $spec"); done
for entry in "${entries[@]}"; do
    rows=${entry%% *} spec=${entry#* }
    IFS=: read -r name wg attach cmd <<<"$spec"
    [[ $wg == kernel || $wg == userspace || $wg == - ]] || bad "$name: WireGuard '$wg'"
    [[ $attach == clsact || $attach == tcx || $attach == - ]] || bad "$name: attach '$attach'"
    for r in ${rows//,/ }; do
        [[ $r == all || " $ALL_ROWS " == *" $r "* ]] || bad "$name: CI row '$r' is no row of: $ALL_ROWS"
    done
    [[ -z ${seen[$name:$wg:$attach]:-} ]] || bad "$name:$wg:$attach is listed twice"
    seen[$name:$wg:$attach]=1
    # What the command runs must exist: a script of the tree, or a test binary CMake makes.
    for script in $(grep -oE '(tests|vagrant)/[a-z_/]+\.sh' <<<"$cmd"); do
        [[ -f $root/$script ]] || bad "$name runs $script, which is not in the tree"
    done
    for bin in $(grep -oE '"\$BUILD"/tests/[a-z_]+' <<<"$cmd" | sed 's|.*/||'); do
        grep -rqE "\(($bin)[ )]" "$root"/tests --include=tests.cmake --include=CMakeLists.txt ||
            bad "$name runs \$BUILD/tests/$bin, which no CMake file under tests/ makes"
    done
done

# The Vagrant machines' pick.
mapfile -t picked < <(select_specs lazy_e2e:kernel)
[[ ${#picked[@]} -eq 2 && ${picked[0]} == lazy_e2e:kernel:clsact:* && ${picked[1]} == lazy_e2e:kernel:tcx:* ]] ||
    bad "select_specs lazy_e2e:kernel gave: ${picked[*]}"
[[ $(select_specs all | wc -l) -eq ${#SCENARIOS[@]} ]] || bad "select_specs all does not give every scenario"
select_specs no_such_scenario >/dev/null && bad "select_specs of an unknown name succeeded"
targets=$(spec_targets "$(select_specs netlink_kernel_test)" | tr '\n' ' ')
[[ $targets == "nbagent nbtraffic netlink_kernel_test no_bpf " ]] || bad "spec_targets netlink_kernel_test gave: $targets"

# The results' tree column: the commit, marked when the work tree differs; no repository,
# "unknown".
repo=$(mktemp -d)
trap 'rm -rf "$repo"' EXIT
git -C "$repo" init -q && echo a >"$repo/f" && git -C "$repo" add f &&
    git -C "$repo" -c user.name=t -c user.email=t@t commit -qm t || bad "cannot make a git repository"
head=$(git -C "$repo" rev-parse --short HEAD)
[[ $(tested_tree "$repo") == "$head" ]] || bad "tested_tree of a clean tree gave: $(tested_tree "$repo")"
echo b >"$repo/f"
[[ $(tested_tree "$repo") == "$head (with uncommitted changes)" ]] ||
    bad "tested_tree of a changed tree gave: $(tested_tree "$repo")"
git -C "$repo" add f
[[ $(tested_tree "$repo") == "$head (with uncommitted changes)" ]] ||
    bad "tested_tree of a staged change gave: $(tested_tree "$repo")"
rm -rf "$repo/.git"
[[ $(tested_tree "$repo") == unknown ]] || bad "tested_tree outside git gave: $(tested_tree "$repo")"

((status == 0)) && echo "PASS: ${#seen[@]} scenarios are sound, the pick gives what it asks for, tested_tree names trees"
exit "$status"
