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
score=$(systemd-analyze security --offline=true "$dir/nbagent@wg0.service" 2>&1 |
    sed -n 's/.*Overall exposure level for nbagent@wg0.service: \([0-9.]*\).*/\1/p')
[[ -n $score ]] || { echo "FAIL: no exposure score from systemd-analyze security"; exit 1; }
if awk -v s="$score" 'BEGIN {exit !(s <= 4.0)}'; then
    echo "PASS: systemd-analyze security --offline: $score (at most 4.0)"
else
    echo "FAIL: systemd-analyze security --offline: $score, above 4.0"
    exit 1
fi
