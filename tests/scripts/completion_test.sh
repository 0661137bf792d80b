#!/usr/bin/env bash
# packaging/completion/nbagent completes commands, subcommands, options (read from the
# binary's own --help) and values, through bash-completion as an interactive shell would.
#   completion_test.sh COMPLETION NBAGENT
set -uo pipefail
completion=$1 nbagent=$2
lib=/usr/share/bash-completion/bash_completion
if [[ ! -r $lib ]]; then
    if [[ ${CI:-} == true ]]; then echo "FAIL: no $lib (scripts/setup.sh installs bash-completion)"; exit 1; fi
    echo "SKIP: no $lib (the bash-completion package)"
    exit 77
fi
# shellcheck source=/dev/null
source "$lib"
# shellcheck source=/dev/null
source "$completion"
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
ln -s "$(realpath "$nbagent")" "$bindir/nbagent"
PATH=$bindir:$PATH
status=0
# complete LINE: the words bash would offer at the end of LINE.
complete_line() {
    local line=$1
    read -ra COMP_WORDS <<<"$line"
    [[ $line == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE=$line
    COMP_POINT=${#line}
    COMPREPLY=()
    _nbagent
    printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}
expect() {
    local line=$1 want=$2 got
    got=$(complete_line "$line")
    if [[ $got == "$want" ]]; then
        echo "PASS: '$line' -> $got"
    else
        echo "FAIL: '$line' -> '$got', expected '$want'"
        status=1
    fi
}
expect "nbagent st" "status "
expect "nbagent peer " "idle wake "
expect "nbagent set log-level " "debug error info trace warn "
expect "nbagent status --pe" "--peer "
expect "nbagent run --trig" "--trigger "
expect "nbagent run --trigger " "auto bpf udp "
expect "nbagent run --wg " "auto kernel userspace "
expect "nbagent run --attach t" "tcx "
expect "nbagent run --log-level " "debug error info trace warn "
expect "nbagent run --lazy-conn " "off on "
expect "nbagent status --state conn" "connected connecting "
expect "nbagent trace peers -o " "compact json "
expect "nbagent trace peers --fail" "--failures "
expect "nbagent debug bundle --no" "--no-profiles "
exit "$status"
