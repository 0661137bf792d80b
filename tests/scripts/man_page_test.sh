#!/usr/bin/env bash
# nbagent(8) covers the command line: every command, and every option that `--help` of
# every command shows, appears in the man page as groff renders it; an option that takes
# names ({a,b,c} in --help) with all of them, as "--opt a|b|c".
#   man_page_test.sh NBAGENT MAN_PAGE
set -uo pipefail
nbagent=$1 page=$2
[[ -s $page ]] || { echo "FAIL: no man page at $page (pandoc builds it)"; exit 1; }
text=$(groff -man -Tutf8 "$page" 2>/dev/null | col -bx) || { echo "FAIL: groff cannot render $page"; exit 1; }
[[ -n $text ]] || { echo "FAIL: $page renders empty"; exit 1; }
status=0 checked=0
commands=("run" "status" "trace peers" "peer idle" "peer wake" "apply" "set lazy" "set log-level"
    "set inactivity-threshold" "features" "version" "debug bundle")
# The commands --help lists must be the ones above: a new command needs its place here.
listed=$("$nbagent" --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 && NF {print $1}' | sort | tr '\n' ' ')
want=$(printf '%s\n' "${commands[@]}" | awk '{print $1}' | sort -u | tr '\n' ' ')
[[ $listed == "$want" ]] || { echo "FAIL: nbagent --help lists '$listed', this test knows '$want'"; status=1; }
for c in "${commands[@]}"; do
    # shellcheck disable=SC2086 # the command's words
    help=$("$nbagent" $c --help) || { echo "FAIL: nbagent $c --help failed"; status=1; continue; }
    grep -qF -- "$c" <<<"$text" || { echo "FAIL: the command '$c' is not in $page"; status=1; }
    while read -r opt; do
        checked=$((checked + 1))
        grep -qF -- "$opt" <<<"$text" || { echo "FAIL: nbagent $c: $opt is not in $page"; status=1; }
    done < <(grep -oE '^ +(-[a-zA-Z],)?--[a-z-]+' <<<"$help" | sed 's/^ *//' | tr ',' '\n' | sort -u)
    # An option that takes the names of a table ({a,b,c} in --help) lists them all, in
    # the table's order: "--wg auto|kernel|userspace".
    while read -r opt names; do
        checked=$((checked + 1))
        grep -qF -- "$opt ${names//,/|}" <<<"$text" ||
            { echo "FAIL: nbagent $c: '$opt ${names//,/|}' is not in $page"; status=1; }
    done < <(sed -n 's/^ *\(-[a-zA-Z],\)\{0,1\}\(--[a-z-]*\) [A-Z]*:{\([^}]*\)}.*/\2 \3/p' <<<"$help")
done
((status == 0)) && echo "PASS: ${#commands[@]} commands and $checked options of --help are in $page"
exit "$status"
