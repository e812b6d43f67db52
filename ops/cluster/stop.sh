#!/usr/bin/env bash
# Stops what ops/cluster/start.sh DIR started: the four ClickHouse servers in parallel (each
# takes about 2 s after SIGTERM), then ZooKeeper. Nothing running is not an error. Only the
# processes named by DIR's pid files are signalled, and only while their command line still
# names DIR.
set -uo pipefail

dir=${1:?usage: stop.sh DIR}
[ -d "$dir" ] || exit 0
dir=$(cd "$dir" && pwd)
timeout_s=${STOP_TIMEOUT_S:-20}

# The pid in $1 if that process is still one of ours.
ours() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$pid" ] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$dir/" && echo "$pid"
}

stop_all() {
    local pids=() pid_file pid
    for pid_file in "$@"; do
        pid=$(ours "$pid_file") && { kill -TERM "$pid" 2>/dev/null; pids+=("$pid"); }
    done
    local deadline=$((SECONDS + timeout_s))
    for pid in "${pids[@]}"; do
        while [ -e "/proc/$pid" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
        if [ -e "/proc/$pid" ]; then
            echo "stop.sh: $pid did not stop in ${timeout_s}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    rm -f "$@"
}

stop_all "$dir"/node{1,2,3,4}/pid
stop_all "$dir/zk/pid"
echo "cluster in $dir stopped"
