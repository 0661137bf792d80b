# Sourced by the lab benchmarks (engines.sh, status.sh, ttfp.sh): the built agent and
# traffic tool, the integration tests' lab helpers, and root.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export NBAGENT=${NBAGENT:-$ROOT/build/cli/nbagent}
export NBTRAFFIC=${NBTRAFFIC:-$ROOT/build/tests/nbtraffic}
# shellcheck source=../tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
require_privileges
require_agent

now_ms() { date +%s%3N; }
# The dummies' endpoints (.100-.199 of the underlay /24) are on-link in the lab and
# nobody answers ARP: every packet to them waits ~3 s in the neighbour queue, charged
# to wireguard-go's one socket, which then blocks its senders and its UAPI with them.
# Real endpoints are behind a gateway: route them via B, which drops them (no
# forwarding), as the Internet drops packets to a host that is gone.
route_dummy_endpoints_via_b() {
    local net=${UNDERLAY_B%.*} p
    for p in 100/30 104/29 112/28 128/26 192/29; do
        in_a ip route add "$net.$p" via "$UNDERLAY_B"
    done
}
# One ping from A to the remote B; prints its round trip in ms, or fails the run.
ping_ms() {
    local out
    # To stderr: callers take the round trip from stdout ($(ping_ms)), which would
    # swallow the reason and leave a run that ends without a word.
    out=$(in_a ping -c 1 -W 10 "$REMOTE_V4" 2>&1) || fail "ping failed: $out" >&2
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out"
}
# Kernel memory that grows with peers, maps and sockets (system-wide), in KiB.
kernel_kb() { awk '/^(Slab|VmallocUsed|Percpu):/ {s += $2} END {print s}' /proc/meminfo; }
# Peers Idle in the agent's status (0 while it does not answer yet).
idle_count() { nb_cli status --json 2>/dev/null | jq -r '.counts.idle' 2>/dev/null || echo 0; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
p99() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR * 99 + 99) / 100)]}'; }
# time_ms CMD...: wall time of one run in ms, its output discarded.
time_ms() {
    local a b
    a=$(date +%s%N)
    "$@" >/dev/null
    b=$(date +%s%N)
    awk -v d=$((b - a)) 'BEGIN {printf "%.1f\n", d / 1e6}'
}
# start_idle_agent ENGINE N TIMEOUT_S: the agent with --trigger ENGINE on a fresh
# interface it makes itself (so all of its memory counts), until N peers are Idle. Sets
# KERNEL_KB_BEFORE (kernel_kb before the start) and SETUP_MS (start to all Idle).
start_idle_agent() {
    local engine=$1 n=$2 timeout_s=$3 t0
    in_a ip link del "$WG_A" 2>/dev/null || true
    sleep 1
    KERNEL_KB_BEFORE=$(kernel_kb)
    t0=$(now_ms)
    start_agent --trigger "$engine" >/dev/null
    wait_for "$timeout_s" "$n peers Idle ($engine)" eval "((\$(idle_count) == $n))"
    SETUP_MS=$(($(now_ms) - t0))
}
