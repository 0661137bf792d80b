#!/usr/bin/env bash
# A peer's exec connector prints bytes that are not UTF-8 (0xff 0xfe) to stderr and
# fails: `status -d --json` must stay JSON that a strict parser (Python's, decoding UTF-8
# strictly) reads, with the connector's line in last_error escaped or replaced by U+FFFD,
# never raw. The same for the text table and the trace.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 2

BAD_KEY=$(wg genkey | wg pubkey)
BAD_V4=10.240.0.9
conf="$LAB_DIR/status_utf8.conf"
{
    cat "$A_CONF"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = %s/32\n' "$BAD_KEY" "$BAD_V4"
    printf 'Connector = exec:printf '"'"'bad \\377\\376 end\\n'"'"' >&2; exit 1\n'
} >"$conf"
A_CONF=$conf # start_agent runs with it
TRACE="$LAB_DIR/trace.json"

start_agent
nb_start_trace "$TRACE"
in_a ping -c 1 -W 1 "$BAD_V4" >/dev/null 2>&1 || true
failed() { [[ $(nb_peer_json "$BAD_KEY" | jq .failures) -ge 1 ]]; }
wait_for 10 "the connector's wake to fail" failed

# strict_json FILE: the peer's last_error, read by a parser that refuses invalid UTF-8
# (json.loads of bytes decodes them strictly; sys.stdin would let them through).
strict_json() {
    python3 -X utf8 -c '
import json, sys
raw = open(sys.argv[1], "rb").read()
status = json.loads(raw.decode("utf-8"))
print(next(p["last_error"] for p in status["peers"] if p["public_key"] == sys.argv[2]))
' "$1" "$BAD_KEY"
}
out="$LAB_DIR/status-d.json"
nb_cli status -d --json >"$out" || fail "status -d --json failed"
err=$(strict_json "$out") || fail "status -d --json is not strict JSON: $(head -c 300 "$out")"
echo "last_error: $err"
# The connector's own line, its two bytes either escaped (\xff\xfe) or U+FFFD each.
fffd=$'\xef\xbf\xbd'
[[ $err == *'bad \xff\xfe end'* || $err == *"bad $fffd$fffd end"* ]] ||
    fail "last_error does not carry the connector's line escaped or replaced: '$err'"
pass "status -d --json parses strictly; last_error '$err'"

# The text table and the trace events (one JSON object per line) hold no raw bytes either.
nb_cli status -d >"$LAB_DIR/status-d.txt" || fail "status -d failed"
grep -qF "$BAD_KEY: " "$LAB_DIR/status-d.txt" || fail "status -d lists no wake error for the peer"
back_to_idle() { (($(nb_trace_events "$TRACE" "$BAD_KEY" '.to == "Idle"' | jq length) >= 1)); }
wait_for 5 "the trace to show the failed wake" back_to_idle
for f in "$LAB_DIR/status-d.txt" "$TRACE"; do
    python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$f" ||
        fail "$f is not valid UTF-8"
done
python3 -c '
import json, sys
for line in open(sys.argv[1], "rb").read().decode("utf-8").splitlines():
    json.loads(line)
' "$TRACE" || fail "a trace line is not JSON"
pass "status -d and the trace are valid UTF-8"
stop_agent
