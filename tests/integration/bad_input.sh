#!/usr/bin/env bash
# Bad input gets a clear error naming the problem (file:line for configs), a non-zero
# exit, and nothing half-applied: no interface created, and a running agent untouched.
source "$(dirname "$0")/lib.sh"
require_privileges
require_agent
lab_up --peers 20

BAD_IF="nbbad$$"
BAD_IF=${BAD_IF:0:15}
CONF_DIR="$LAB_DIR/bad"
mkdir -p "$CONF_DIR"
key_a=$(wg genkey)
pub1=$(wg genkey | wg pubkey)
pub2=$(wg genkey | wg pubkey)

# expect_run_error NAME PATTERN ARGS...: `nbagent run` in A must exit non-zero, print
# PATTERN, and leave no interface called $BAD_IF behind.
expect_run_error() {
    local name=$1 pattern=$2 rc=0
    shift 2
    in_a "$NBAGENT" run -i "$BAD_IF" --run-dir "$LAB_DIR/badrun" "$@" \
        >"$CONF_DIR/$name.out" 2>&1 </dev/null || rc=$?
    ((rc != 0)) || fail "$name: nbagent run exited 0"
    grep -qE -- "$pattern" "$CONF_DIR/$name.out" || {
        cat "$CONF_DIR/$name.out"
        fail "$name: error does not match '$pattern'"
    }
    if in_a ip link show "$BAD_IF" >/dev/null 2>&1; then
        fail "$name: interface $BAD_IF was left behind"
    fi
    pass "$name: exit $rc, '$(grep -m1 -E -- "$pattern" "$CONF_DIR/$name.out" | sed 's/^.*\] //')'"
}

# conf NAME LINE...: writes the lines to $CONF_DIR/NAME.conf and prints the path.
conf() {
    local name=$1
    shift
    printf '%s\n' "$@" >"$CONF_DIR/$name.conf"
    echo "$CONF_DIR/$name.conf"
}

f=$(conf malformed "[Interface]" "PrivateKey = $key_a" "this line has no equals sign")
expect_run_error malformed "malformed\.conf:3: " -c "$f"

f=$(conf badkey "[Interface]" "PrivateKey = $key_a" "[Peer]" "PublicKey = not-a-key")
expect_run_error bad-key "badkey\.conf:4: " -c "$f"

f=$(conf duppeer "[Interface]" "PrivateKey = $key_a" \
    "[Peer]" "PublicKey = $pub1" "AllowedIPs = 10.50.0.1/32" \
    "[Peer]" "PublicKey = $pub1" "AllowedIPs = 10.50.0.2/32")
expect_run_error duplicate-peer "duppeer\.conf:7: .*3" -c "$f"

f=$(conf overlap "[Interface]" "PrivateKey = $key_a" \
    "[Peer]" "PublicKey = $pub1" "AllowedIPs = 10.50.0.0/24" \
    "[Peer]" "PublicKey = $pub2" "AllowedIPs = 10.50.0.0/24")
expect_run_error overlapping-allowed-ips "overlap\.conf:8: " -c "$f"

f=$(conf badendpoint "[Interface]" "PrivateKey = $key_a" \
    "[Peer]" "PublicKey = $pub1" "AllowedIPs = 10.50.0.1/32" "Endpoint = 10.0.0.1:99999")
expect_run_error bad-endpoint "badendpoint\.conf:6: " -c "$f"

expect_run_error missing-file "(not exist|cannot read).*nope\.conf|nope\.conf: cannot read" -c "$CONF_DIR/nope.conf"
expect_run_error adopt-missing "does not exist" # no -c and no such interface

good=$(conf good "[Interface]" "PrivateKey = $key_a" "[Peer]" "PublicKey = $pub1" \
    "AllowedIPs = 10.50.0.1/32")
expect_run_error bad-flag "max-held-packets" -c "$good" --max-held-packets 0
expect_run_error bad-wg-mode "wg" -c "$good" --wg sideways

# Missing privileges: the same good config, readable by all, as an unprivileged user.
readable=$(mktemp /tmp/nbbad.XXXXXX.conf)
cp "$good" "$readable"
chmod 0644 "$readable"
rc=0
in_a setpriv --reuid=65534 --regid=65534 --clear-groups "$NBAGENT" run -i "$BAD_IF" -c "$readable" \
    --run-dir "$LAB_DIR/badrun" >"$CONF_DIR/unpriv.out" 2>&1 </dev/null || rc=$?
rm -f "$readable"
((rc != 0)) || fail "unprivileged run exited 0"
grep -q "needs root" "$CONF_DIR/unpriv.out" || fail "unprivileged run: $(cat "$CONF_DIR/unpriv.out")"
if in_a ip link show "$BAD_IF" >/dev/null 2>&1; then fail "unprivileged run created $BAD_IF"; fi
pass "missing privileges: exit $rc, '$(head -n1 "$CONF_DIR/unpriv.out")'"

# A running agent is not disturbed by bad input aimed at it.
start_agent
idle_count() { nb_cli status --json | jq '.counts.idle'; }
[[ $(idle_count) == 20 ]] || fail "expected 20 Idle peers, got $(idle_count)"
rc=0
in_a "$NBAGENT" run -i "$WG_A" -c "$A_CONF" --run-dir "$AGENT_RUN_DIR" \
    >"$CONF_DIR/second.out" 2>&1 </dev/null || rc=$?
((rc != 0)) || fail "a second agent on $WG_A started"
grep -q "already running" "$CONF_DIR/second.out" || fail "second agent: $(cat "$CONF_DIR/second.out")"
pass "second agent on the same interface refused: '$(grep -m1 "already running" "$CONF_DIR/second.out" | sed 's/^.*\] //')'"

rc=0
nb_cli peer idle "not-a-key" >"$CONF_DIR/idle.out" 2>&1 || rc=$?
((rc != 0)) || fail "peer idle with a bad key exited 0"
pass "control request with a bad key: exit $rc, '$(head -n1 "$CONF_DIR/idle.out")'"
rc=0
nb_cli peer idle "$pub1" >"$CONF_DIR/idle2.out" 2>&1 || rc=$?
((rc != 0)) || fail "peer idle with an unknown key exited 0"
grep -q "unknown peer" "$CONF_DIR/idle2.out" || fail "unknown peer: $(cat "$CONF_DIR/idle2.out")"
pass "control request for an unknown peer: '$(head -n1 "$CONF_DIR/idle2.out")'"

# Raw garbage on the socket gets an error reply naming it.
reply=$(printf 'this is not json\n' | in_a timeout 5 socat - "UNIX-CONNECT:$AGENT_RUN_DIR/$WG_A.sock" || true)
jq -e '.ok == false and (.error | test("invalid JSON"))' <<<"$reply" >/dev/null ||
    fail "garbage request got: $reply"
pass "garbage on the control socket: $reply"

# A path that never ends or blocks: the client refuses it at once (it reads the file
# itself), and the agent refuses one named in a raw request without blocking its loop.
mkfifo "$CONF_DIR/fifo"
for path in /dev/zero "$CONF_DIR/fifo"; do
    rc=0
    timeout 5 "$NBAGENT" apply -c "$path" -i "$WG_A" --run-dir "$AGENT_RUN_DIR" \
        >"$CONF_DIR/apply-special.out" 2>&1 || rc=$?
    ((rc == 1)) || fail "apply -c $path: exit $rc (124 = blocked): $(cat "$CONF_DIR/apply-special.out")"
    grep -q "not a regular file" "$CONF_DIR/apply-special.out" ||
        fail "apply -c $path: $(cat "$CONF_DIR/apply-special.out")"
    pass "apply -c $path refused at once: '$(head -n1 "$CONF_DIR/apply-special.out")'"
    reply=$(jq -cn --arg p "$path" '{cmd: "apply", config_path: $p}' |
        in_a timeout 5 socat - "UNIX-CONNECT:$AGENT_RUN_DIR/$WG_A.sock" || true)
    jq -e '.ok == false and (.error | test("not a regular file"))' <<<"$reply" >/dev/null ||
        fail "agent-side read of $path: '$reply'"
    pass "agent asked to read $path itself: $reply"
done

# A status request of 1 MiB is refused unread (only apply may be that long), and other
# clients are answered meanwhile.
big=$(head -c 1048576 /dev/zero | tr '\0' x)
reply=$(printf '{"cmd":"status","pad":"%s"}\n' "$big" |
    in_a timeout 5 socat - "UNIX-CONNECT:$AGENT_RUN_DIR/$WG_A.sock" || true)
jq -e '.ok == false and (.error | test("too long"))' <<<"$reply" >/dev/null ||
    fail "1 MiB status request: '${reply:0:200}'"
pass "1 MiB status request refused: $(jq -r .error <<<"$reply")"

# A connector that prints invalid UTF-8 and a terminal escape: the wake fails, and
# status (JSON and text), the trace and the log stay valid, escape-free UTF-8.
GARBAGE_KEY=$(wg genkey | wg pubkey)
{
    cat "$A_CONF"
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.240.0.9/32\n' "$GARBAGE_KEY"
    printf 'Connector = exec:printf '"'"'bad \\377\\376 \\033[2J\\n'"'"' >&2; exit 1\n'
} >"$CONF_DIR/garbage.conf"
nb_cli apply -c "$CONF_DIR/garbage.conf" >/dev/null
in_a ping -c 1 -W 1 10.240.0.9 >/dev/null 2>&1 || true
garbage_failed() { [[ $(nb_peer_json "$GARBAGE_KEY" | jq .failures) -ge 1 ]]; }
wait_for 10 "the garbage connector's wake to fail" garbage_failed
nb_cli status -d --json >"$CONF_DIR/status-d.json"
iconv -f UTF-8 -t UTF-8 "$CONF_DIR/status-d.json" >/dev/null || fail "status -d --json is not valid UTF-8"
err=$(jq -r --arg k "$GARBAGE_KEY" '.peers[] | select(.public_key == $k) | .last_error' "$CONF_DIR/status-d.json")
[[ $err == *'bad \xff\xfe \x1b[2J'* ]] || fail "last_error: '$err'"
nb_cli status -d >"$CONF_DIR/status-d.txt" || fail "status -d (text) failed: $(cat "$CONF_DIR/status-d.txt")"
for f in "$CONF_DIR/status-d.txt" "$AGENT_LOG"; do
    iconv -f UTF-8 -t UTF-8 "$f" >/dev/null || fail "$f is not valid UTF-8"
    ! grep -q $'\e' "$f" || fail "$f holds a raw escape character"
done
pass "connector garbage shown printable in status -d, --json and the log: '$err'"
nb_cli apply -c "$A_CONF" >/dev/null

# After all that, the agent still works: a ping wakes B.
[[ $(idle_count) == 20 ]] || fail "peers changed state after bad requests"
ping_check "$REMOTE_V4"
[[ $(nb_cli status --json | jq '.counts.connected') == 1 ]] || fail "B not Connected"
pass "agent unaffected: B woke on the first ping"
stop_agent
