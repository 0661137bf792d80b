#!/usr/bin/env bash
# `status` on a 1,000-peer lab with real wireguard-go: without -d there is no "peers" (an
# empty list read as "no peers"); the summary names the version, uptime, public key and
# listen port; each filter (--state, --peer with a whole key or a prefix, --ip, --failing)
# lists exactly the peers the unfiltered list says it should; each peer says where a wake
# would go and since when it is in its state.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 1000
start_agent --connect-timeout 2s

# B Connected, the lab's dummy 2nd peer failing (its endpoint answers nobody).
DUMMY_KEY=$(nb_dummy_key)
ping_check "$REMOTE_V4"
wait_for 10 "B Connected" nb_state_is "$B_PUBKEY" Connected
in_a ping -c 1 -W 1 10.101.0.1 >/dev/null 2>&1 || true
dummy_failed() { (($(nb_cli status --json --peer "$DUMMY_KEY" | jq -r '.peers[0].failures') >= 1)); }
wait_for 10 "the dummy peer to fail" dummy_failed

ALL="$LAB_DIR/all.json"
nb_cli status -d --json >"$ALL"
(($(jq '.peers | length' "$ALL") == 1000)) || fail "status -d lists $(jq '.peers | length' "$ALL") peers, not 1000"

summary=$(nb_cli status --json)
jq -e 'has("peers") | not' <<<"$summary" >/dev/null || fail "status without -d has \"peers\""
jq -e --arg k "$A_PUBKEY" '.public_key == $k and .listen_port == 51820 and (.version | length) > 0 and
    .uptime_s >= 0 and (.started | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))' <<<"$summary" >/dev/null ||
    fail "the summary lacks the version, uptime, public key or listen port: $(jq -c '{version, started, uptime_s, public_key, listen_port}' <<<"$summary")"
pass "status without -d: no peers; summary $(jq -c '{version, uptime_s, public_key, listen_port}' <<<"$summary")"

# filtered ARGS... -- JQ: the keys `status -d ARGS` lists equal those JQ selects from the
# unfiltered list (both sorted), and there is at least one.
filtered() {
    local args=() got want
    while [[ $1 != -- ]]; do args+=("$1"); shift; done
    shift
    got=$(nb_cli status --json "${args[@]}" | jq -r '.peers[].public_key' | sort)
    want=$(jq -r ".peers[] | select($1) | .public_key" "$ALL" | sort)
    [[ -n $want ]] || fail "status ${args[*]}: the unfiltered list has no such peer ($1)"
    [[ $got == "$want" ]] || fail "status ${args[*]} listed $(wc -w <<<"$got") peers, expected $(wc -w <<<"$want"): got '${got:0:200}', expected '${want:0:200}'"
    pass "status ${args[*]}: exactly the $(wc -w <<<"$want") expected peers"
}
filtered --state connected -- '.state == "Connected"'
filtered --state IDLE -- '.state == "Idle"'
filtered --failing -- '.failures > 0 or .retry_in_ms > 0 or .last_error != ""'
filtered --peer "$B_PUBKEY" -- ".public_key == \"$B_PUBKEY\""
# A prefix shared by several keys (about 16 of 1,000): the 3rd peer's first character.
prefix=$(jq -r '.peers[2].public_key[0:1]' "$ALL")
filtered --peer "$prefix" -- ".public_key | startswith(\"$prefix\")"
filtered --ip "$REMOTE_V4" -- ".public_key == \"$B_PUBKEY\""
# The 500th peer's address, and the same with --state (both must hold).
ip500=$(jq -r '.peers[499].allowed_ips[0] | split("/")[0]' "$ALL")
key500=$(jq -r '.peers[499].public_key' "$ALL")
filtered --ip "$ip500" -- ".public_key == \"$key500\""
filtered --ip "$ip500" --state idle -- ".public_key == \"$key500\""
[[ $(nb_cli status --json --ip "$ip500" --state connected | jq '.peers | length') == 0 ]] ||
    fail "--ip of an Idle peer with --state connected listed it"
[[ $(nb_cli status --json --ip 192.0.2.99 | jq '.peers | length') == 0 ]] ||
    fail "--ip of an address no peer routes listed a peer"
out=$(nb_cli status --ip 192.0.2.99) || fail "status --ip with no match failed"
grep -q "no peer matches" <<<"$out" || fail "the table does not say no peer matches: $out"
out=$(nb_cli status --ip 10.0.0 2>&1) && fail "status --ip 10.0.0 was accepted"
grep -q "not an IP address" <<<"$out" || fail "--ip 10.0.0 is refused without naming the problem: $out"
out=$(nb_cli status --peer 'no/such-key' 2>&1) && fail "status --peer with a '-' was accepted"
grep -q '"peer" must be a public key' <<<"$out" || fail "a bad --peer is refused without naming it: $out"
pass "no match lists none; bad filters are refused by name"

# Per peer: where a wake goes (the configured endpoint) and since when.
jq -e --arg k "$key500" '.peers[] | select(.public_key == $k) |
    .endpoint == "" and (.wake_endpoint | test(":51820$")) and .state_since_ms > 0' "$ALL" >/dev/null ||
    fail "an Idle peer does not say where a wake goes or since when: $(jq -c --arg k "$key500" '.peers[] | select(.public_key == $k)' "$ALL")"
now_ms=$(($(date +%s%3N)))
since=$(jq -r --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k) | .state_since_ms' "$ALL")
((since > 0 && since <= now_ms && now_ms - since < 60000)) || fail "B's state_since_ms $since is not within the last minute ($now_ms)"
table=$(nb_cli status --peer "$B_PUBKEY")
grep -q "FOR" <<<"$table" || fail "the table has no FOR column: $table"
pass "peers say where a wake goes and since when"

# The trace filters, on the events the agent kept: each selects exactly what the whole
# kept trace says it should.
TRACE="$LAB_DIR/trace.ndjson"
nb_cli trace peers --last 100000 -o json >"$TRACE" || fail "trace --last failed"
(($(wc -l <"$TRACE") > 0)) || fail "the agent kept no trace event"
jq -e -s 'map(select(.event == "transition" and (.ip | type) == "string")) | length > 0' "$TRACE" >/dev/null ||
    fail "state events carry no allowed IP"
traced() { # ARGS... -- JQ: `trace --last 100000 ARGS` lists exactly the kept events JQ selects
    local args=() got want
    while [[ $1 != -- ]]; do args+=("$1"); shift; done
    shift
    got=$(nb_cli trace peers --last 100000 -o json "${args[@]}" | jq -c -S .)
    want=$(jq -c -S "select($1)" "$TRACE")
    [[ -n $want ]] || fail "trace ${args[*]}: the kept trace has no such event ($1)"
    [[ $got == "$want" ]] || fail "trace ${args[*]} listed $(wc -l <<<"$got") events, expected $(wc -l <<<"$want")"
    pass "trace ${args[*]}: exactly the $(wc -l <<<"$want") expected events"
}
traced --peer "$B_PUBKEY" -- ".peer == \"$B_PUBKEY\""
traced --ip "$REMOTE_V4" -- ".peer == \"$B_PUBKEY\""
traced --event state -- '.event == "transition"'
traced --event trigger,drop -- '.event == "trigger" or .event == "drop"'
traced --failures -- '.event == "drop" or (.event == "transition" and has("error"))'
traced --peer "$DUMMY_KEY" --event state -- ".peer == \"$DUMMY_KEY\" and .event == \"transition\""
[[ $(nb_cli trace peers --last 2 -o json | wc -l) == 2 ]] || fail "trace --last 2 did not list 2 events"
out=$(nb_cli trace peers --last 5 --ip 192.0.2.99 2>&1) && fail "trace --ip of no peer was accepted"
grep -q "no peer routes 192.0.2.99" <<<"$out" || fail "trace --ip of no peer: $out"
compact=$(nb_cli trace peers --last 100000 --peer "$B_PUBKEY" --event state)
grep -q "state .* $REMOTE_V4/32 Idle -> Connecting" <<<"$compact" || fail "a compact state line lacks B's address: $compact"
pass "trace --last 2, --ip of no peer, compact state lines with the address"

stop_agent
