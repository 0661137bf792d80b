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
# One ping from A to the remote B; prints its round trip in ms, or fails the run.
ping_ms() {
    local out
    out=$(in_a ping -c 1 -W 10 "$REMOTE_V4" 2>&1) || fail "ping failed: $out"
    sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' <<<"$out"
}
