#!/usr/bin/env bash
# `nbagent debug bundle` on a lab with real wireguard-go, taken during a burst of wakes:
# every file is there and parses (JSON, NDJSON, the CPU profile through google-pprof);
# neither bundle holds a private or preshared key; the anonymized one holds no address,
# endpoint, public key, host name or connector command of the lab, while the plain one
# does (so the greps can fail).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
command -v google-pprof >/dev/null || skip "google-pprof is not installed (package google-perftools)"
lab_up --peers 3

# Things only the lab knows, which an anonymized bundle must hide: a host-name endpoint,
# an exec connector's command, and a preshared key (with the device's private key).
HOST_PEER=$(wg genkey | wg pubkey)
CMD_PEER=$(wg genkey | wg pubkey)
PSK=$(wg genpsk)
conf="$LAB_DIR/debug_bundle.conf"
{
    cat "$A_CONF"
    printf '\n[Peer]\nPublicKey = %s\nPresharedKey = %s\nAllowedIPs = 10.240.1.1/32, fd10:240::1/128\n' \
        "$HOST_PEER" "$PSK"
    printf 'Endpoint = bundle-secret-host.example:51820\n'
    printf '\n[Peer]\nPublicKey = %s\nAllowedIPs = 10.240.1.2/32\n' "$CMD_PEER"
    printf 'Connector = exec:/bin/echo bundle-secret-connector 10.240.9.9:51820\n'
} >"$conf"
A_CONF=$conf
start_agent

# A burst of wakes all through both bundles: B goes idle and is pinged awake.
wakes() {
    while :; do
        nb_cli peer idle "$B_PUBKEY" >/dev/null 2>&1
        in_a ping -c 1 -W 2 "$REMOTE_V4" >/dev/null 2>&1
    done
}
wakes &
NB_BG_PIDS+=("$!")
# And status requests back to back on one connection, so the agent spends enough CPU for
# the profile to sample it (100 Hz: 10 ms of CPU a sample). The wakes alone take less, and
# so did one `nbagent status` process after another: one profile in four had no sample.
statuses() {
    yes '{"cmd":"status","detail":true}' |
        socat - "UNIX-CONNECT:$AGENT_RUN_DIR/$WG_A.sock" >/dev/null 2>&1
}
statuses &
NB_BG_PIDS+=("$!")
sleep 1

take() { # take NAME ARGS...: a bundle into $LAB_DIR/NAME.tar.gz, unpacked into $LAB_DIR/NAME/
    local name=$1 out
    shift
    out=$(nb_cli debug bundle -o "$LAB_DIR/$name.tar.gz" --profile-duration 2s "$@") ||
        fail "debug bundle $* failed: $out"
    echo "$out"
    [[ $(stat -c %a "$LAB_DIR/$name.tar.gz") == 600 ]] || fail "$name.tar.gz is not mode 0600"
    mkdir -p "$LAB_DIR/$name"
    tar -xzf "$LAB_DIR/$name.tar.gz" -C "$LAB_DIR/$name" --strip-components 1 ||
        fail "$name.tar.gz does not unpack"
}
take plain
take anon --anonymize
left=("$AGENT_RUN_DIR"/debug-*)
[[ ! -e ${left[0]} ]] || fail "the agent's bundle directory was left behind: ${left[*]}"

FILES=(README.txt version.json features.json settings.json status.json trace.ndjson agent.log
    wireguard.txt bpf.txt tc.txt resources.txt stacks.txt allocations.txt locks.txt
    blocking.txt latency.txt)
# The sanitizer build has no CPU profiler (gperftools and ASan are not meant to mix): its
# bundle says so instead.
PROFILED=1
[[ ${NB_SANITIZED:-} == 1 ]] && PROFILED=0
((PROFILED)) && FILES+=(cpu.prof)
for b in plain anon; do
    d=$LAB_DIR/$b
    for f in "${FILES[@]}"; do [[ -s $d/$f ]] || fail "$b: $f is missing or empty"; done
    for f in version.json features.json settings.json status.json; do
        jq -e . "$d/$f" >/dev/null || fail "$b: $f is not JSON"
    done
    jq -e '.counts and (.peers | length) == 5' "$d/status.json" >/dev/null ||
        fail "$b: status.json lacks the counts or the 5 peers"
    jq -e -s 'length > 0 and all(.event)' "$d/trace.ndjson" >/dev/null ||
        fail "$b: trace.ndjson is not events one per line"
    jq -e '.settings | map(select(.name == "--trace-ring" and .source == "default")) | length == 1' \
        "$d/settings.json" >/dev/null || fail "$b: settings.json does not say where --trace-ring came from"
    if ((PROFILED)); then
        pprof=$(google-pprof --text "$NBAGENT" "$d/cpu.prof" 2>&1) || fail "$b: google-pprof cannot read cpu.prof: $pprof"
        grep -q '^Total:' <<<"$pprof" || fail "$b: google-pprof printed no total: $pprof"
        pprof=$(grep '^Total:' <<<"$pprof")
    else
        grep -q '^cpu.prof: not available' "$d/README.txt" || fail "$b: README.txt does not say why there is no cpu.prof"
        pprof="none in this build"
    fi
    grep -q 'Agent::loop' "$d/stacks.txt" ||
        fail "$b: stacks.txt does not show the event loop: $(head -40 "$d/stacks.txt")"
    grep -q '^wake total: count=[1-9]' "$d/latency.txt" || fail "$b: latency.txt counts no wake: $(cat "$d/latency.txt")"
    pass "$b: ${#FILES[@]} files, each parses; CPU profile: $pprof"
done
# The wakes of the burst are in the trace (and so the ring kept events before the bundle).
(($(jq -s --arg k "$B_PUBKEY" '[.[] | select(.peer == $k and .to == "Connected")] | length' \
    "$LAB_DIR/plain/trace.ndjson") >= 1)) || fail "the trace has no wake of B"
pass "trace.ndjson has B's wakes"

# No private or preshared key in either bundle, in base64 or hex.
hex() { base64 -d <<<"$1" | od -An -tx1 | tr -d ' \n'; }
secrets=("$PSK" "$(hex "$PSK")")
while read -r k; do secrets+=("$k" "$(hex "$k")"); done < <(awk '/^(PrivateKey|PresharedKey)/ {print $3}' "$A_CONF")
for s in "${secrets[@]}"; do
    for b in plain anon; do
        ! grep -rqiF -- "$s" "$LAB_DIR/$b" || fail "$b holds a private or preshared key ($s)"
    done
done
pass "no private or preshared key in either bundle (${#secrets[@]} forms checked)"

# Everything that identifies the lab, from its config: addresses, endpoints, public keys.
mapfile -t ids < <(
    awk -F' = ' '/^(Address|AllowedIPs|Endpoint|PublicKey)/ {print $2}' "$A_CONF" | tr ',' '\n' |
        sed 's/^ *//; s/ *$//; s|/[0-9]*$||; s/:51820$//' | sort -u
)
ids+=("$A_PUBKEY" bundle-secret-host bundle-secret-connector "$UNDERLAY_A" "$UNDERLAY_B")
found=0
for id in "${ids[@]}"; do
    [[ -n $id ]] || continue
    grep -rqF --exclude=cpu.prof -- "$id" "$LAB_DIR/plain" && found=$((found + 1))
    if hits=$(grep -rnF --exclude=cpu.prof -- "$id" "$LAB_DIR/anon" | head -3) && [[ -n $hits ]]; then
        fail "the anonymized bundle still holds '$id': $hits"
    fi
done
((found >= 5)) || fail "the plain bundle holds only $found of the lab's ${#ids[@]} identifiers: the check sees nothing"
pass "anonymized: none of ${#ids[@]} identifiers of the lab (the plain bundle holds $found)"
grep -q '198\.51\.100\.\|203\.0\.113\.' "$LAB_DIR/anon/status.json" || fail "no mapped IPv4 address in anon/status.json"
grep -q '2001:db8:' "$LAB_DIR/anon/status.json" || fail "no mapped IPv6 address in anon/status.json"
pass "addresses mapped into the documentation ranges"
stop_agent
