#!/usr/bin/env bash
# The Vagrant kernel matrix, end to end, on a machine like this one (libvirt, no public
# boxes, KVM possibly unusable):
#   vagrant/run-matrix.sh [--machines "debian11 debian12"] [--scenarios "lazy_e2e:kernel"]
#                         [--out FILE] [--keep] [--jobs N] [--table-only]
# For each machine: builds or reuses its local box (vagrant/boxes/build.sh), adds it to
# Vagrant afresh when it was rebuilt, `vagrant up`s it (boot, rsync, provision.sh, which
# builds nbagent in the guest and runs the scenarios through vagrant/qemu/run-scenarios.sh
# from the qemu matrix's list, vagrant/scenarios.sh), collects the guest's result lines and
# `vagrant destroy`s it (--keep leaves it running, as does a failed vagrant up).
# --jobs N runs N machines at once.
# Starts virtlogd and libvirtd when no libvirtd answers, and stops at the end only what
# it started.
# --scenarios: NAME or NAME:WG of vagrant/scenarios.sh, or "all" (default lazy_e2e:kernel).
# --out (default vagrant/README.md) gets the table between its "vagrant-matrix" markers:
# machine, kernel, WireGuard, attach mode, scenario, result, seconds, and the machine's
# boot-to-result time. Consoles and logs stay in $NBVM_CACHE/vagrant-logs; --table-only
# writes the table again from the results kept there, without booting anything.
# Exit: 0 all passed (skip and n/a allowed), 1 a scenario failed or had no result, 2 the
# set-up failed (tools, boxes, libvirt).
# Machines: debian11, debian12, debian12-6.12 (those with local boxes).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${NBVM_CACHE:-/var/cache/nbagent-vm}
machines="debian11 debian12"
scenarios="lazy_e2e:kernel"
out="$HERE/README.md"
keep=0
jobs=1
table_only=0
while (($#)); do
    case $1 in
        --machines) machines=${2:?}; shift 2 ;;
        --scenarios) scenarios=${2:?}; shift 2 ;;
        --out) out=${2:?}; shift 2 ;;
        --keep) keep=1; shift ;;
        --jobs) jobs=${2:?}; shift 2 ;;
        --table-only) table_only=1; shift ;;
        -h | --help) sed -n '2,20p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "run-matrix.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

die() {
    echo "vagrant/run-matrix.sh: $*" >&2
    exit 2
}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "--jobs: expected a positive number, got '$jobs'"
step() { echo "==> vagrant matrix: $*"; }
[[ $(id -u) -eq 0 ]] || die "needs root (libvirt's system daemon, the box builder)"
# shellcheck source=../scripts/packages.sh
source "$HERE/../scripts/packages.sh"
nb_install_missing "${NB_PKGS_VAGRANT[@]}" || die "apt-get install failed"
# shellcheck source=scenarios.sh
source "$HERE/scenarios.sh"
# shellcheck disable=SC2086 # scenario specs are words
select_specs $scenarios >/dev/null || die "--scenarios '$scenarios': none of vagrant/scenarios.sh's scenarios"

logs="$CACHE/vagrant-logs"
mkdir -p "$logs"
export VAGRANT_CWD="$HERE" NB_VAGRANT_CONSOLE="$logs" NB_VAGRANT_SCENARIOS="$scenarios"
export VAGRANT_DEFAULT_PROVIDER=libvirt

# libvirt: use the running daemons, or start them and remember to stop them.
started=()
stop_started() {
    local pid
    for pid in "${started[@]}"; do kill "$pid" 2>/dev/null || true; done
}
libvirt_up() {
    virsh -c qemu:///system version >/dev/null 2>&1 && return 0
    local d
    for d in virtlogd libvirtd; do
        pgrep -x "$d" >/dev/null && continue
        "$d" -d || die "$d -d failed"
        started+=("$(pgrep -nx "$d")")
        step "started $d (pid ${started[-1]}); it is stopped at the end"
    done
    for _ in $(seq 50); do virsh -c qemu:///system version >/dev/null 2>&1 && return 0; sleep 0.2; done
    die "libvirtd does not answer on qemu:///system"
}

# add_box NAME: (re)adds the local box when the built one is not the one Vagrant has.
# vagrant-libvirt keeps a box's image in libvirt's pool under its own name, and would
# reuse a stale one: that volume goes too.
add_box() {
    local name=$1 stamp added="$CACHE/boxes/$1.added" vol
    stamp=$(cat "$CACHE/boxes/$name.stamp")
    [[ -f $added && $(cat "$added") == "$stamp" ]] && vagrant box list | grep -q "^nbagent/$name " && return
    step "$name: adding the rebuilt box to Vagrant"
    vagrant box remove --force "nbagent/$name" >/dev/null 2>&1 || true
    for vol in $(virsh -c qemu:///system vol-list default 2>/dev/null | awk -v p="nbagent-VAGRANTSLASH-${name}_vagrant_box" 'index($1, p) == 1 {print $1}'); do
        virsh -c qemu:///system vol-delete --pool default "$vol" >/dev/null
    done
    vagrant box add --force --name "nbagent/$name" "$CACHE/boxes/$name.box" || die "vagrant box add $name failed"
    echo "$stamp" >"$added"
}

# write_table RESULTS FILE: the Markdown table, between FILE's markers (FILE is created
# with just the table when it has none). A result line is run-scenarios.sh's, with the
# machine's seconds, the tree, the driver and the day appended by run_machine.
write_table() {
    local begin='<!-- vagrant-matrix:begin -->' end='<!-- vagrant-matrix:end -->' table
    table=$(
        echo "$begin"
        echo "\`vagrant/run-matrix.sh --machines \"$machines\" --scenarios \"$scenarios\"\`"
        echo "(\`up to result\`: from \`vagrant up\` to the results, boot, rsync, packages and build included):"
        echo
        echo "| machine | kernel | WireGuard | attach | scenario | result | scenario s | up to result s | tree | libvirt driver | day | note |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
        sed 's/^MATRIX //' "$1" | while IFS='|' read -r label wg attach name result secs note total tree drv day; do
            echo "| ${label%% *} | ${label#* } | $wg | $attach | $name | $result | $secs | $total | $tree | $drv | $day | $note |"
        done
        echo "$end"
    )
    if grep -qF "$begin" "$2" 2>/dev/null; then
        awk -v b="$begin" -v e="$end" -v t="$table" '
            $0 == b { print t; skip = 1; next }
            $0 == e { skip = 0; next }
            !skip' "$2" >"$2.new" && mv "$2.new" "$2"
    else
        echo "$table" >"$2"
    fi
}

# gather_results: every machine's result lines, in the order asked, into $logs/results.
gather_results() {
    results="$logs/results"
    : >"$results"
    for m in $machines; do cat "$logs/$m.results" >>"$results" 2>/dev/null || true; done
}

if ((table_only)); then
    gather_results
    [[ -s $results ]] || die "no results of $machines in $logs"
    write_table "$results" "$out" || exit 2
    step "table in $out (from the results in $logs)"
    exit 0
fi

trap stop_started EXIT
tested=$(tested_tree "$HERE")
libvirt_up
driver=$(bash "$HERE/kvm-usable.sh")
export NB_VAGRANT_DRIVER=$driver
# shellcheck disable=SC2086 # machine names are words
bash "$HERE/boxes/build.sh" $machines || die "building the boxes failed"

# run_machine NAME: one machine from box to result lines, into $logs/NAME.results, each
# line with the machine's seconds from `vagrant up` to its result appended. Exit 1 when
# vagrant up failed (a failed scenario fails provision.sh, so vagrant up too).
run_machine() {
    local m=$1 t0=$SECONDS rc=0 secs lines line
    vagrant destroy -f "$m" >/dev/null 2>&1 || true
    step "$m: vagrant up (boot, rsync, provision.sh with scenarios '$scenarios'); log $logs/$m.up.log"
    vagrant up "$m" >"$logs/$m.up.log" 2>&1 || rc=$?
    secs=$((SECONDS - t0))
    lines=$(vagrant ssh "$m" -c 'sudo cat /root/nbagent-results' 2>/dev/null | tr -d '\r' | grep '^MATRIX ' || true)
    if [[ -z $lines ]]; then
        tail -n 20 "$logs/$m.up.log"
        lines="MATRIX $m ?|-|-|(all)|fail|0|no result: vagrant up exited $rc (see $m.up.log)"
    fi
    while IFS= read -r line; do echo "$line|$secs|$tested|$driver|$(date -u +%F)"; done <<<"$lines" >"$logs/$m.results"
    step "$m: done in $secs s"
    cat "$logs/$m.results"
    # A machine that failed stays, for a look and a `vagrant provision` (40 minutes or more to remake).
    if ((keep || rc != 0)); then
        step "$m: kept (VAGRANT_CWD=$HERE vagrant ssh $m; vagrant destroy -f $m)"
    else
        vagrant destroy -f "$m" >/dev/null 2>&1 || true
    fi
    return $((rc != 0))
}

status=0
pids=()
for m in $machines; do
    add_box "$m"
    rm -f "$logs/$m.results"
    if ((jobs > 1)); then
        # For hosts with cores to spare: a machine under TCG keeps two busy compiling, so
        # on 2 cores two side by side take longer than one after the other (README).
        run_machine "$m" &
        pids+=($!)
        while (($(jobs -rp | wc -l) >= jobs)); do wait -n || status=1; done
    else
        run_machine "$m" || status=1
    fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
gather_results
grep -q '|fail|' "$results" && status=1
write_table "$results" "$out" || status=2
step "table in $out; exit $status"
exit "$status"
