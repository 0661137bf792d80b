# shellcheck shell=bash
# Sourced: the one scenario list of both kernel matrices, the qemu runner
# (vagrant/qemu/run-matrix.sh) and the Vagrant machines (vagrant/provision.sh).
# Defines SCENARIOS, LONG_RUNS, NETLINK_SCALE and ALL_ROWS, two functions to pick from
# them (select_specs, spec_targets), and tested_tree for the results' tree column; reads
# nothing.
# shellcheck disable=SC2034 # the arrays are for the scripts that source this

# The scenarios: "ROWS NAME:WG:ATTACH:COMMAND", ROWS being the rows CI runs it on
# ("all", or one or more kernel series joined by commas); --full runs all on every row.
#
# The rule for CI: whatever can break on one kernel only runs on every row; any other
# scenario runs on one row (the cheapest that balances the rows). Kernel-dependent:
#  - BPF load and the verifier: smoke (bpftool loads our object), bpf_prog_test;
#  - tcx and clsact attach, and living beside other tc filters: lazy_e2e in both attach
#    modes on both WireGuards, tc_coexist, and tc_coexist_order in both modes (ours run
#    first; a program ahead is reported). Its tcx entry is n/a below 6.6 (no tcx), and
#    its clsact entry says there that no tcx program can run ahead. wireguard-go's tun
#    device under clsact runs on 5.10 and 6.1, where clsact is the only mode; on 6.12
#    tcx on both WireGuards and clsact on kernel WireGuard cover it;
#  - the kernel WireGuard netlink path: netlink_kernel_test, lab_kernel_eager. Its two
#    scale cases (100,000 peers; dumps interrupted by changes, 10,000 peers) take 25-40 s
#    a row under emulation and test the same message splitting on every kernel, so CI
#    runs them on one row (netlink_kernel_scale);
#  - hold and replay on kernel WireGuard: lazy_e2e (kernel);
#  - the BPF ring buffer running full (overrun), and pinned maps and links adopted after
#    a crash (crash_recovery);
#  - the capabilities `run` needs as a user that is not root (capabilities): what the
#    verifier and the kernel's checks ask differs by kernel. CI runs it on 6.12; the
#    full tier finds the minimum on every row.
# The rest exercise the agent's own logic on kernel WireGuard: the same code on every
# kernel, and the host's ctest runs it on wireguard-go as well.
# The order is the order of a row. groups mostly waits out 20 s inactivity thresholds,
# so it runs in the background beside the rest ("background",
# run-scenarios.sh); crash_recovery and eager_mode count BPF links machine-wide, so they
# run first, "alone". stale_sessions waits too, but counts a stream's gaps across agent
# restarts: beside the rest under emulation it once lost 1 of 320 datagrams.
# systemd_service needs systemd as PID 1: a command starting with "systemd " runs in a VM
# of its own booted that way (run-vm.sh --init systemd), after the row's VM; the package
# and the unit are the same on every kernel, so CI boots it on one row.
# gtest's filter for netlink_kernel_scale.
NETLINK_SCALE='KernelWireGuardTest.HundredThousandPeers:KernelWireGuardTest.DumpsInterruptedByChangesAreRetried'
SCENARIOS=(
    'all smoke:-:-:bash vagrant/qemu/smoke.sh "$BUILD"'
    'all bpf_prog_test:-:-:"$BUILD"/tests/bpf_prog_test'
    'all crash_recovery:kernel:-:alone bash tests/integration/crash_recovery.sh'
    '6.1 eager_mode:kernel:-:alone bash tests/integration/eager_mode.sh'
    '6.1 groups:kernel:-:background bash tests/integration/groups.sh'
    '6.12 stale_sessions:kernel:-:bash tests/integration/stale_sessions.sh'
    '6.1 lab_eager:userspace:-:bash tests/integration/lab_eager.sh'
    'all lab_kernel_eager:kernel:-:bash tests/integration/lab_kernel_eager.sh'
    '5.10,6.1 lazy_e2e:userspace:clsact:bash tests/integration/lazy_e2e.sh'
    'all lazy_e2e:userspace:tcx:bash tests/integration/lazy_e2e.sh'
    'all lazy_e2e:kernel:clsact:bash tests/integration/lazy_e2e.sh'
    'all lazy_e2e:kernel:tcx:bash tests/integration/lazy_e2e.sh'
    'all tc_coexist:kernel:-:bash tests/integration/tc_coexist.sh'
    'all tc_coexist_order:kernel:tcx:bash tests/integration/tc_coexist_order.sh'
    'all tc_coexist_order:kernel:clsact:bash tests/integration/tc_coexist_order.sh'
    '6.12 bad_input:kernel:-:bash tests/integration/bad_input.sh'
    'all netlink_kernel_test:kernel:-:"$BUILD"/tests/netlink_kernel_test --gtest_filter=-'"$NETLINK_SCALE"
    '6.1 netlink_kernel_scale:kernel:-:"$BUILD"/tests/netlink_kernel_test --gtest_filter='"$NETLINK_SCALE"
    '6.1 apply:kernel:-:bash tests/integration/apply.sh'
    '6.12 two_agents:kernel:-:bash tests/integration/two_agents.sh'
    '6.12 cycles:kernel:-:NB_CYCLES=30 NB_CYCLES_WARMUP=10 bash tests/integration/cycles.sh'
    '6.12 failures:kernel:-:bash tests/integration/failures.sh'
    '6.1 lazy_e2e_no_bpf:kernel:-:bash tests/integration/lazy_e2e_no_bpf.sh'
    '6.12 lazy_e2e_udp:kernel:-:bash tests/integration/lazy_e2e_udp.sh'
    'all overrun:kernel:-:bash tests/integration/overrun.sh'
    '6.1 routes:kernel:-:bash tests/integration/routes.sh'
    '6.12 flood_no_peer:kernel:-:bash tests/integration/flood_no_peer.sh'
    '5.10 gso:kernel:-:bash tests/integration/gso.sh'
    '6.12 capabilities:kernel:-:bash tests/integration/capabilities.sh'
    '6.12 systemd_service:kernel:-:systemd bash tests/integration/systemd_service.sh'
)
# Long runs: scale versions of a scenario above, too slow for CI under emulation. Only
# --full runs them (a long run is a command you run and record, not a CI step).
LONG_RUNS=(
    'apply_100k:kernel:-:min-kernel=6.12 NB_APPLY_PEERS=100000 bash tests/integration/apply.sh'
)

ALL_ROWS="5.10 6.1 6.12"

# select_specs WORD...: the specs (NAME:WG:ATTACH:COMMAND) of SCENARIOS whose NAME or
# NAME:WG is one of the words ("all": every one), in the list's order. Exit 1 when none is.
select_specs() {
    local entry spec name wg want found=1
    for entry in "${SCENARIOS[@]}"; do
        spec=${entry#* }
        IFS=: read -r name wg _ <<<"$spec"
        for want in "$@"; do
            if [[ $want == all || $want == "$name" || $want == "$name:$wg" ]]; then
                echo "$spec"
                found=0
                break
            fi
        done
    done
    return "$found"
}

# spec_targets SPEC...: the build targets the specs run: the agent, the lab's traffic
# tool, the no-BPF wrapper, and each test binary a command names ("$BUILD"/tests/X).
spec_targets() {
    {
        printf '%s\n' nbagent nbtraffic no_bpf
        printf '%s\n' "$@" | grep -oE '"\$BUILD"/tests/[a-z_]+' | sed 's|.*/||'
    } | sort -u
}

# tested_tree DIR: the tree a matrix tests, for its results: DIR's commit, and a mark
# when the work tree differs from it. Read it before writing results into the tree.
tested_tree() {
    local commit
    commit=$(git -C "$1" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
    git -C "$1" diff --quiet HEAD || commit+=" (with uncommitted changes)"
    echo "$commit"
}
