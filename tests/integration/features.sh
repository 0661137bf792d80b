#!/usr/bin/env bash
# `nbagent features` reports what the probes find, and `auto` picks accordingly.
source "$(dirname "$0")/lib.sh"
require_privileges
require_agent

f=$("$NBAGENT" features --json)
echo "$f" | jq -c .
for k in bpf ringbuf lpm_trie; do
    [[ $(jq -r ".$k.ok" <<<"$f") == true ]] || fail "$k not usable as root: $(jq -c ".$k" <<<"$f")"
done
pass "bpf, ring buffer and LPM trie usable as root"
[[ $(jq -r .auto.trigger <<<"$f") == bpf ]] || fail "auto trigger is not bpf"
# tcx: the probe must agree with what attaching really does on this kernel.
lab_up --peers 2
start_agent
mode=$(nb_cli status --json | jq -r .attach_mode)
stop_agent
want=$([[ $(jq -r .tcx.ok <<<"$f") == true ]] && echo tcx || echo clsact)
[[ $mode == "$want" && $(jq -r .auto.attach <<<"$f") == "$want" ]] ||
    fail "probe says $want (auto.attach $(jq -r .auto.attach <<<"$f")) but the agent attached with $mode"
pass "tcx probe agrees with the agent's attach mode ($mode)"
kw=$(jq -r .kernel_wireguard.ok <<<"$f")
wg=$(jq -r .auto.wg <<<"$f")
if [[ $kw == true ]]; then [[ $wg == kernel ]] || fail "kernel WireGuard present but auto.wg=$wg"; fi
if [[ $kw == false ]]; then [[ $wg == userspace ]] || fail "no kernel WireGuard, wireguard-go present, but auto.wg=$wg"; fi
pass "auto WireGuard backend: $wg (kernel WireGuard: $kw)"

# Unprivileged: bpf() refused, said so, and nothing else crashes.
u=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$NBAGENT" features --json)
[[ $(jq -r .bpf.ok <<<"$u") == false ]] || fail "bpf usable without privileges?"
jq -r .bpf.detail <<<"$u" | grep -q "not permitted" || fail "unprivileged detail: $(jq -r .bpf.detail <<<"$u")"
pass "unprivileged: $(jq -r .bpf.detail <<<"$u")"
"$NBAGENT" features | grep -q "^auto trigger" || fail "human output lacks the auto trigger line"
pass "human-readable output"

# Without BPF (bpf() fails with ENOSYS under tests/tools/no_bpf): auto picks udp and says
# why; unprivileged (EPERM) likewise.
[[ -x ${NB_NO_BPF:-} ]] || fail "no_bpf is not built (NB_NO_BPF='${NB_NO_BPF:-}')"
n=$("$NB_NO_BPF" "$NBAGENT" features --json)
[[ $(jq -r .auto.trigger <<<"$n") == udp ]] || fail "without BPF auto.trigger is $(jq -r .auto.trigger <<<"$n")"
jq -r .auto.trigger_reason <<<"$n" | grep -q "not implemented" ||
    fail "without BPF the reason is '$(jq -r .auto.trigger_reason <<<"$n")'"
[[ $(jq -r .auto.trigger <<<"$u") == udp ]] || fail "unprivileged auto.trigger is $(jq -r .auto.trigger <<<"$u")"
pass "without BPF: auto trigger udp ($(jq -r .auto.trigger_reason <<<"$n"))"
