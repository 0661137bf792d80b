#!/usr/bin/env bash
# packaging/systemd/nbagent@.service as systemd reads it: `systemd-analyze verify` finds
# nothing wrong, and `systemd-analyze security` (offline, from the file alone) scores it
# at most 4.0, "OK". The live score under a booted systemd is the VM row's to measure.
#   unit_file_test.sh UNIT NBAGENT
set -uo pipefail
unit=$1 nbagent=$2
if ! command -v systemd-analyze >/dev/null; then
    if [[ ${CI:-} == true ]]; then echo "FAIL: no systemd-analyze (scripts/setup.sh installs systemd)"; exit 1; fi
    echo "SKIP: no systemd-analyze (the systemd package)"
    exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The instance as it would be enabled, running the binary just built.
sed "s|^ExecStart=[^ ]*/nbagent |ExecStart=$nbagent |" "$unit" >"$dir/nbagent@wg0.service"
out=$(cd "$dir" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no ./nbagent@wg0.service 2>&1)
if [[ -n $out ]]; then
    echo "FAIL: systemd-analyze verify: $out"
    exit 1
fi
echo "PASS: systemd-analyze verify: no complaint"
# The system calls the filter leaves, as systemd merges SystemCallFilter= lines: the
# first line's kind (allow) sets the start, each later line adds (allow) or removes (~).
# A group nested in a group is expanded too. The agent must keep what it cannot work
# without; the VM row (tests/integration/systemd_service.sh) shows it working live.
expand() {
    local item
    for item in "$@"; do
        if [[ $item == @* ]]; then
            # shellcheck disable=SC2046 # one word per member
            expand $(systemd-analyze syscall-filter --no-pager "$item" | sed -n '2,$p' | grep -v '^ *#' | tr -d ' ')
        else
            echo "$item"
        fi
    done
}
declare -A allowed=()
while read -r line; do
    value=${line#SystemCallFilter=}
    deny=0
    [[ $value == ~* ]] && deny=1 value=${value#\~}
    # shellcheck disable=SC2086 # a list of words
    for call in $(expand $value); do
        if ((deny)); then unset "allowed[$call]"; else allowed[$call]=1; fi
    done
done < <(grep '^SystemCallFilter=' "$unit")
for call in bpf setrlimit prlimit64 socket setsockopt sendmsg recvmmsg signalfd4 timerfd_create epoll_wait flock; do
    [[ -n ${allowed[$call]:-} ]] || { echo "FAIL: SystemCallFilter= leaves out $call, which the agent needs"; exit 1; }
done
echo "PASS: SystemCallFilter= leaves bpf, setrlimit/prlimit64 and the agent's socket and event calls"
score=$(systemd-analyze security --offline=true "$dir/nbagent@wg0.service" 2>&1 |
    sed -n 's/.*Overall exposure level for nbagent@wg0.service: \([0-9.]*\).*/\1/p')
[[ -n $score ]] || { echo "FAIL: no exposure score from systemd-analyze security"; exit 1; }
if awk -v s="$score" 'BEGIN {exit !(s <= 4.0)}'; then
    echo "PASS: systemd-analyze security --offline: $score (at most 4.0)"
else
    echo "FAIL: systemd-analyze security --offline: $score, above 4.0"
    exit 1
fi
