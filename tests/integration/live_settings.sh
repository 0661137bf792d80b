#!/usr/bin/env bash
# SIGHUP reads the settings file again (docs/config.md, "Settings file and SIGHUP"), on
# a lab with real wireguard-go:
#  - the live settings (inactivity-threshold, log-level) take the file's new values;
#  - a `set` lasts until the next SIGHUP, which goes back to the file;
#  - an option only a restart changes is named in the log, not taken;
#  - a bad file changes no setting, names PATH:LINE, and the map is still re-read;
#  - a line removed from the file gives the setting back its default.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

require_agent
require_privileges
lab_up --peers 2

settings="$LAB_DIR/settings.conf"
printf '# live_settings\ninactivity-threshold = 10m\nlog-level = info\n' >"$settings"
start_agent --settings "$settings"

threshold_is() { [[ $(nb_cli status --json | jq .inactivity_threshold_ms) == "$1" ]]; }
sighup() {
    local lines
    lines=$(wc -l <"$AGENT_LOG")
    kill -HUP "$AGENT_PID"
    # The map is re-read last: its line says SIGHUP is through.
    wait_for 10 "SIGHUP handled" eval "tail -n +$((lines + 1)) '$AGENT_LOG' | grep -q 'network map: '"
    kill -0 "$AGENT_PID" || fail "the agent died on SIGHUP"
    tail -n +$((lines + 1)) "$AGENT_LOG"
}

threshold_is 600000 || fail "the settings file's 10m is not in force at the start"
grep -q "inactivity 10m" "$AGENT_LOG" || fail "the start line does not say inactivity 10m"
pass "the settings file's values are in force at the start"

printf 'inactivity-threshold = 3m\nlog-level = debug\nconnect-timeout = 4s\n' >"$settings"
out=$(sighup)
threshold_is 180000 || fail "SIGHUP did not take inactivity-threshold = 3m"
grep -q "SIGHUP: log level debug" <<<"$out" || fail "SIGHUP did not take log-level = debug: $out"
grep -qF "$settings:3: connect-timeout = 4s takes effect at the next start (running with 10s)" <<<"$out" ||
    fail "the log does not name the option only a restart changes: $out"
lines=$(wc -l <"$AGENT_LOG")
nb_cli status >/dev/null
wait_for 5 "a debug line" eval "tail -n +$((lines + 1)) '$AGENT_LOG' | grep -q '\[debug\]'"
pass "SIGHUP: inactivity-threshold 3m and log-level debug at once; connect-timeout waits for a restart"

nb_cli set inactivity-threshold 7m >/dev/null || fail "set inactivity-threshold 7m failed"
threshold_is 420000 || fail "set inactivity-threshold 7m did not take"
sighup >/dev/null
threshold_is 180000 || fail "after SIGHUP the threshold is not the file's 3m again"
pass "a set lasts until SIGHUP, which goes back to the file"

printf 'inactivity-threshold = 3m\nlog-level = info\ninactivity-threshold = 5s\n' >"$settings"
out=$(sighup)
grep -qF "SIGHUP: settings: $settings:3: inactivity-threshold is already set on line 1 (no setting changed)" <<<"$out" ||
    fail "a bad settings file is not named with its line: $out"
printf 'inactivity-threshold = 5s\n' >"$settings"
out=$(sighup)
grep -qF "SIGHUP: settings: $settings:1: --inactivity-threshold: inactivity threshold \"5s\" is below the minimum of 10s" <<<"$out" ||
    fail "a bad value is not named with its line: $out"
threshold_is 180000 || fail "a bad settings file changed the threshold"
nb_cli status --json | jq -e '.counts.idle + .counts.connecting + .counts.connected == 2' >/dev/null ||
    fail "the peers are not all there after a bad settings file"
pass "a bad settings file changes no setting and names the line; the map is still re-read"

printf 'log-level = info\n' >"$settings"
sighup >/dev/null
threshold_is 900000 || fail "with the line removed the threshold is not the default 15m"
pass "a line removed from the file: the setting is back to its default"

stop_agent
