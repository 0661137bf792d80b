#!/usr/bin/env bash
# docs/config.md and `nbagent run --help` agree: every flag of one is in the other, with
# the same value spellings ({a,b,c} in --help is `a|b|c` in the docs, on|off alike) and,
# where --help shows one, the same default.
#   config_doc_test.sh NBAGENT DOCS
set -uo pipefail
nbagent=$1 docs=$2
help=$("$nbagent" run --help) || { echo "FAIL: $nbagent run --help failed"; exit 1; }
# The docs' Switches table: "| `--flag VALUES`, ... | default | meaning |".
table=$(awk '/^## Switches/ {on = 1; next} /^## / {on = 0} on && /^\| `--/' "$docs")
status=0
bad() { echo "FAIL: $*"; status=1; }
declare -A in_help=()
while read -r flag spec; do
    in_help[$flag]=1
    row=$(grep -F -- "| \`$flag" <<<"$table" | head -1)
    [[ -n $row ]] || { bad "$flag is in --help but not in $docs"; continue; }
    first=$(cut -d'|' -f2- <<<"$row" | sed 's/\\|/@/g' | cut -d'|' -f1)
    default=$(sed 's/\\|/@/g' <<<"$row" | cut -d'|' -f3 | sed 's/^ *//; s/ *$//')
    values=$(sed -n 's/.*:{\([^}]*\)}.*/\1/p' <<<"$spec" | tr ',' '@')
    [[ -z $values ]] && values=$(sed -n 's/.*:\(on|off\).*/\1/p' <<<"$spec" | tr '|' '@')
    if [[ -n $values && $first != *"$values"* ]]; then
        bad "$flag: --help takes ${values//@/|}, $docs says '${first//@/|}'"
    fi
    help_default=$(sed -n 's/.*=\([^ ]*\)$/\1/p' <<<"$spec")
    if [[ -n $help_default && $default != "$help_default" ]]; then
        bad "$flag: --help's default is $help_default, $docs says '$default'"
    fi
done < <(sed -n 's/^ *\(-[a-z],\)\{0,1\}\(--[a-z-]*\) \(.*\)$/\2 \3/p' <<<"$help" |
    sed 's/  .*//' | grep -v -e '^--help' -e '^--interface' -e '^--config')
while read -r flag; do
    [[ -n ${in_help[$flag]:-} ]] || bad "$flag is in $docs but not in --help"
done < <(grep -o '^| `--[a-z-]*' <<<"$table" | sed 's/^| `//')
((status == 0)) && echo "PASS: ${#in_help[@]} flags agree between --help and $docs"
exit "$status"
