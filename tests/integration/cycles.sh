#!/usr/bin/env bash
# A peer can go Idle -> Connecting -> Connected -> Idle any number of times: NB_CYCLES
# (default 1000) cycles of "ping B once, `nbagent peer idle B`", and nothing the agent
# holds may grow with them. After a warm-up (NB_CYCLES_WARMUP, default 100: containers
# reach their steady capacity, the allocator its working set) and again at the end the
# test takes the agent's open fds, threads, the entries of its BPF maps nb_hosts and
# nb_prefixes, its RSS and, where gdb is installed, glibc's heap bytes in use.
# fds, threads and map entries must not change at all; RSS and heap get a tolerance
# (below). Status counters and the trace prove that every cycle really happened. The
# agent keeps a small trace ring (--trace-ring 64), full within the warm-up.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

# Under ASan/UBSan the default is 200 cycles (about 45 s instead of 200 s): memory is not
# compared there (below) and what the sanitizers check, a bad access or a leak at exit,
# shows in the first cycles as much as in the thousandth.
# NB_SANITIZED comes from ctest (NB_SANITIZE=ON); ldd finds GCC's shared runtime where a
# sanitizer build is run by hand (clang links its runtime statically).
AGENT_SANITIZED=0
if [[ ${NB_SANITIZED:-} == 1 ]] ||
    { [[ -n ${NBAGENT:-} ]] && ldd "$NBAGENT" 2>/dev/null | grep -Eq 'lib(asan|ubsan|tsan)'; }; then
    AGENT_SANITIZED=1
fi
if ((AGENT_SANITIZED)); then
    CYCLES=${NB_CYCLES:-200}
    WARMUP=${NB_CYCLES_WARMUP:-50}
else
    CYCLES=${NB_CYCLES:-1000}
    WARMUP=${NB_CYCLES_WARMUP:-100}
fi
[[ $CYCLES =~ ^[0-9]+$ && $WARMUP =~ ^[0-9]+$ ]] ||
    fail "NB_CYCLES ('$CYCLES') and NB_CYCLES_WARMUP ('$WARMUP') must be numbers"
((WARMUP >= 1 && CYCLES > WARMUP)) ||
    fail "need NB_CYCLES > NB_CYCLES_WARMUP >= 1 (got $CYCLES, $WARMUP)"

# Allowed growth between the two samples, over the (CYCLES - WARMUP) measured cycles.
# A ManagedPeer, a held packet's buffer or a job entry leaked per cycle is 100+ bytes,
# so a per-cycle leak shows as >= 100 bytes * measured cycles (90 KB for 1000 cycles).
# - heap (bytes in use, exact): steady state is flat, but one rehash of a hash map or a
#   vector doubling that happens late can add a few KB once; 16 KB allows that and still
#   catches 100 bytes/cycle over >= 170 measured cycles.
# - RSS (pages, 4 KB): also moves with what the allocator keeps (freed chunks that are
#   not trimmed, a fresh arena page touched by a worker thread): a handful of pages
#   of noise. 64 KB allows 16 pages; a 100-byte/cycle leak over 900 cycles (88 KB)
#   still exceeds it, and anything bigger per cycle does so sooner.
HEAP_TOLERANCE=$((16 * 1024))
RSS_TOLERANCE_KB=64

require_agent
require_privileges
command -v bpftool >/dev/null || skip "bpftool not installed (scripts/setup.sh installs it)"
# NB_CYCLES_PEERS: the map's size (the soak in docs/reliability.md runs 1000); B cycles.
PEERS=${NB_CYCLES_PEERS:-10}
[[ $PEERS =~ ^[0-9]+$ ]] && ((PEERS >= 2)) || fail "NB_CYCLES_PEERS must be a number >= 2"
lab_up --peers "$PEERS"

# Under ASan/UBSan the heap is ASan's (freed memory sits in quarantine, so RSS grows by
# design) and LeakSanitizer checks leaks at exit instead: memory is not compared there.
MEMORY_CHECKS=1
if ((AGENT_SANITIZED)); then
    MEMORY_CHECKS=0
    echo "note: $NBAGENT is a sanitizer build: RSS is printed, not compared; heap not measured"
fi

# The trace ring kept for debug bundles grows with every event (4 a cycle, ~150 bytes
# each) up to its size (100,000): a small ring is full before the warm-up ends, so the
# cycles after it measure what must not grow, and its overwriting runs all the while.
start_agent --trace-ring 64
AGENT_PROC=/proc/$AGENT_PID

# Like wait_for, with a short poll interval: most states are there at the first look.
wait_counts() { # IDLE CONNECTING CONNECTED WHAT
    local deadline=$((SECONDS + 10))
    until nb_counts_are "$1" "$2" "$3"; do
        ((SECONDS < deadline)) || fail "cycle $cycle: timed out after 10 s waiting for $4 ($(nb_cli status --json | jq -c .counts))"
        sleep 0.01
    done
}
wait_for 60 "$PEERS peers Idle" nb_counts_are "$PEERS" 0 0
pass "$PEERS peers Idle after start"

nb_start_trace "$LAB_DIR/trace.json"

# The agent's BPF maps by name, found through its own fds (bpftool 7.1 does not show
# which process holds a map), so other agents on the host do not count.
map_ids() {
    local fd id
    for fd in "$AGENT_PROC"/fdinfo/*; do
        id=$(awk '$1 == "map_id:" {print $2}' "$fd" 2>/dev/null) || continue
        [[ -n $id ]] || continue
        case $(bpftool -j map show id "$id" | jq -r .name) in
            nb_hosts) HOSTS_MAP=$id ;;
            nb_prefixes) PREFIXES_MAP=$id ;;
        esac
    done
}
HOSTS_MAP="" PREFIXES_MAP=""
map_ids
[[ -n $HOSTS_MAP && -n $PREFIXES_MAP ]] ||
    fail "agent $AGENT_PID holds no map nb_hosts ('$HOSTS_MAP') or nb_prefixes ('$PREFIXES_MAP')"
pass "agent's maps: nb_hosts id $HOSTS_MAP, nb_prefixes id $PREFIXES_MAP"
map_entries() { bpftool -j map dump id "$1" | jq length; }

# glibc's own count of heap bytes in use (every arena and mmapped chunks), from
# malloc_stats() called in the agent through gdb; it prints to the agent's stderr, i.e.
# its log. Empty when gdb is missing or the output is not glibc's.
heap_in_use() {
    ((MEMORY_CHECKS)) || return 0 # ASan's malloc_stats prints its own stats
    command -v gdb >/dev/null || return 0
    local before
    before=$(wc -l <"$AGENT_LOG")
    timeout 60 gdb -nx -batch -p "$AGENT_PID" -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || return 0
    tail -n +$((before + 1)) "$AGENT_LOG" |
        awk '/^Total \(incl. mmap\):/ {t = 1} t && /^in use bytes/ {print $NF; exit}'
}

# One sample: SAMPLE_FDS SAMPLE_THREADS SAMPLE_HOSTS SAMPLE_PREFIXES SAMPLE_RSS_KB SAMPLE_HEAP.
sample() {
    # A CLI that just exited may still have its connection open in the agent until the
    # event loop sees the hang-up: let it settle.
    sleep 0.5
    SAMPLE_FDS=$(find "$AGENT_PROC/fd" -mindepth 1 -maxdepth 1 | wc -l)
    SAMPLE_THREADS=$(awk '$1 == "Threads:" {print $2}' "$AGENT_PROC/status")
    SAMPLE_HOSTS=$(map_entries "$HOSTS_MAP")
    SAMPLE_PREFIXES=$(map_entries "$PREFIXES_MAP")
    SAMPLE_HEAP=$(heap_in_use)
    # After gdb: attaching must not be what the RSS reading sees.
    SAMPLE_RSS_KB=$(awk '$1 == "VmRSS:" {print $2}' "$AGENT_PROC/status")
    # Kernel slab, host-wide: printed for the soak's record, not compared (other work on
    # the host moves it).
    SAMPLE_SLAB_KB=$(awk '$1 == "Slab:" {print $2}' /proc/meminfo)
    echo "after $1 cycles: fds $SAMPLE_FDS, threads $SAMPLE_THREADS, nb_hosts $SAMPLE_HOSTS entries," \
        "nb_prefixes $SAMPLE_PREFIXES entries, RSS $SAMPLE_RSS_KB kB, heap in use ${SAMPLE_HEAP:-(not measured)} bytes," \
        "kernel slab $SAMPLE_SLAB_KB kB"
}

# A WireGuard responder drops an initiation less than 20 ms after the previous one and
# one whose timestamp (kept at ~16 ms granularity) is not newer: B must see our
# initiations >= 25 ms apart. Each starts after the ping does, so 30 ms between the end
# of one cycle's ping and the start of the next is enough.
MIN_GAP_US=30000
now_us() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }

echo "--- $CYCLES cycles (ping B, B Connected, peer idle B, B Idle); samples after $WARMUP and $CYCLES"
err="$LAB_DIR/ping.err"
last_ping_end=0
start_s=$SECONDS
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
    gap=$(($(now_us) - last_ping_end))
    ((gap >= 0)) || gap=0 # the wall clock stepped back
    ((gap >= MIN_GAP_US)) || sleep "$(printf '0.%06d' $((MIN_GAP_US - gap)))"
    if ! in_a ping -c 1 -W 5 "$REMOTE_V4" >/dev/null 2>"$err" || [[ -s $err ]]; then
        cat "$err"
        fail "cycle $cycle: ping to idle B not answered on the first try"
    fi
    last_ping_end=$(now_us)
    wait_counts $((PEERS - 1)) 0 1 "B Connected"
    nb_cli peer idle "$B_PUBKEY" >/dev/null || fail "cycle $cycle: peer idle failed"
    wait_counts "$PEERS" 0 0 "B Idle"
    if ((cycle == WARMUP)); then
        sample "$cycle"
        fds0=$SAMPLE_FDS threads0=$SAMPLE_THREADS hosts0=$SAMPLE_HOSTS prefixes0=$SAMPLE_PREFIXES
        rss0=$SAMPLE_RSS_KB heap0=$SAMPLE_HEAP
    fi
    ((cycle % 100 == 0)) && echo "  $cycle cycles ($((SECONDS - start_s)) s)"
done
sample "$CYCLES"
echo "--- $CYCLES cycles in $((SECONDS - start_s)) s"

# Every cycle was a real wake of B alone: counters and trace agree.
status=$(nb_cli status -d --json)
b=$(jq -c --arg k "$B_PUBKEY" '.peers[] | select(.public_key == $k)' <<<"$status")
echo "B's status: $b"
[[ $(jq .wakes <<<"$b") == "$CYCLES" ]] || fail "B has $(jq .wakes <<<"$b") wakes after $CYCLES cycles"
pass "B's wakes == $CYCLES"
# held counts packets held in total: each cycle's echo request, nothing else.
[[ $(jq -c '[.held, .dropped, .failures]' <<<"$b") == "[$CYCLES,0,0]" ]] ||
    fail "B: expected $CYCLES held, 0 dropped, 0 failures: $(jq -c '{held, dropped, failures}' <<<"$b")"
pass "B: $CYCLES packets held (one per cycle), nothing dropped, no failures"
others=$(jq --arg k "$B_PUBKEY" '[.peers[] | select(.public_key != $k) | .wakes] | add' <<<"$status")
((others == 0)) || fail "the dummy peers have $others wakes"
pass "no other peer woke"

stop_agent # the trace ends with the agent: its file is complete
nb_wait_pid "$NB_TRACE_PID" 10 || fail "trace client still running after the agent stopped"
transitions() { # FROM TO REASON: B's transitions of that kind
    jq -s --arg k "$B_PUBKEY" --arg f "$1" --arg t "$2" --arg r "$3" \
        '[.[] | select(.event == "transition" and .peer == $k and .from == $f and .to == $t and .reason == $r)] | length' \
        "$LAB_DIR/trace.json"
}
for t in "Idle Connecting packet" "Connecting Connected packet" "Connected Idle operator"; do
    # shellcheck disable=SC2086 # three words on purpose
    n=$(transitions $t)
    ((n == CYCLES)) || fail "trace: $n transitions $t for B, expected $CYCLES"
    pass "trace: $CYCLES transitions $t"
done
n=$(jq -s '[.[] | select(.event == "transition")] | length' "$LAB_DIR/trace.json")
((n == 3 * CYCLES)) || fail "trace: $n transitions in all, expected $((3 * CYCLES))"
pass "trace: no other transitions"

# Nothing may grow with the cycles.
((SAMPLE_FDS == fds0)) || fail "open fds grew from $fds0 to $SAMPLE_FDS"
pass "open fds: $fds0 -> $SAMPLE_FDS"
((SAMPLE_THREADS == threads0)) || fail "threads grew from $threads0 to $SAMPLE_THREADS"
pass "threads: $threads0 -> $SAMPLE_THREADS"
((SAMPLE_HOSTS == hosts0 && SAMPLE_PREFIXES == prefixes0)) ||
    fail "map entries changed: nb_hosts $hosts0 -> $SAMPLE_HOSTS, nb_prefixes $prefixes0 -> $SAMPLE_PREFIXES"
pass "map entries: nb_hosts $hosts0 -> $SAMPLE_HOSTS, nb_prefixes $prefixes0 -> $SAMPLE_PREFIXES"
# Both numbers first, then the verdicts.
measured=$((CYCLES - WARMUP))
rss_growth=$((SAMPLE_RSS_KB - rss0))
echo "RSS growth over $measured cycles: $rss_growth kB (tolerance $RSS_TOLERANCE_KB kB)"
heap_growth=""
if [[ -n $heap0 && -n $SAMPLE_HEAP ]]; then
    heap_growth=$((SAMPLE_HEAP - heap0))
    echo "heap growth over $measured cycles: $heap_growth bytes" \
        "($((heap_growth / measured)) per cycle; tolerance $HEAP_TOLERANCE)"
else
    echo "note: heap in use not measured (needs gdb and glibc's malloc_stats): RSS only"
fi
if ((MEMORY_CHECKS)); then
    if [[ -n $heap_growth ]]; then
        ((heap_growth <= HEAP_TOLERANCE)) || fail "heap in use grew by $heap_growth bytes (> $HEAP_TOLERANCE)"
        pass "heap in use: $heap0 -> $SAMPLE_HEAP bytes"
    fi
    ((rss_growth <= RSS_TOLERANCE_KB)) || fail "RSS grew by $rss_growth kB (> $RSS_TOLERANCE_KB kB)"
    pass "RSS: $rss0 -> $SAMPLE_RSS_KB kB"
fi
