#!/usr/bin/env bash
# A flood to addresses routed through the interface that belong to no peer costs the
# agent nothing: the egress program's lookup misses and passes them to WireGuard (which
# has no peer for them either), so no report reaches the agent. Shown by its counter
# (status --json .ring_reports) and its CPU time; every peer stays Idle. A packet to a
# real peer right after still wakes it.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 20

reports() { nb_cli status --json | jq .ring_reports; }
cpu_ms() { awk '{print ($14 + $15) * 10}' "/proc/$AGENT_PID/stat"; }

start_agent
[[ $(nb_cli status --json | jq -r .trigger) == bpf ]] || skip "the BPF engine is not in use here ($(nb_cli status --json | jq -r .trigger_reason))"
before=$(reports) cpu_before=$(cpu_ms)
# 10.100.0.0/16 is the interface's own subnet; its only peer address is B's 10.100.0.2.
for round in 1 2 3 4 5; do
    # Kernel WireGuard refuses each (no peer: ENOKEY, an ICMP error); wireguard-go drops them.
    in_a "$NBTRAFFIC" udp-sweep --from 10.100.9.0 --hosts 4000 --port 9 --within-ms 200 >/dev/null || true
done
sleep 0.5
after=$(reports) cpu_after=$(cpu_ms)
((after == before)) || fail "20,000 datagrams to no peer made $((after - before)) reports"
[[ $(nb_cli status --json | jq -c '[.counts.idle, .counts.connecting, .counts.connected]') == "[20,0,0]" ]] ||
    fail "peers changed state: $(nb_cli status --json | jq -c .counts)"
pass "20,000 datagrams to 4,000 addresses of no peer: 0 reports (ring_reports $before -> $after), agent CPU $((cpu_after - cpu_before)) ms, all 20 peers Idle"
ping_check "$REMOTE_V4"
(($(reports) > after)) || fail "the wake of B made no report"
pass "a real peer still wakes on its first packet; ring_reports $(reports)"
stop_agent
