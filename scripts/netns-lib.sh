# shellcheck shell=bash
# Shared by the lab scripts (sourced): what belongs to a lab's network namespaces.

# kill_ns_processes NS: every process in a namespace of the lab gets SIGTERM, and SIGKILL
# after 5 s. Logs through the sourcing script's `log`.
kill_ns_processes() {
    local ns=$1 pids i
    ip netns list | awk '{print $1}' | grep -qx "$ns" || return 0
    mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
    ((${#pids[@]})) || return 0
    log "stopping processes in $ns: ${pids[*]}"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
        ((${#pids[@]})) || return 0
        sleep 0.1
    done
    log "still running after 5 s, killing: ${pids[*]}"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    sleep 0.2
}
