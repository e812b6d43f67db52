#!/usr/bin/env bash
# Two builds of the service compared on one noisy machine: runs alternate between them, each
# on a fresh service with its own managed ClickHouse, each run wrk against the do-nothing
# baseline and then against the service, printing the rate as a share of the baseline's and
# the service's own CPU per request (user + system time of its process across the run, from
# /proc/PID/stat). The CPU per request moves less with the neighbours than the rates do, and
# alternating spreads drift over both builds.
#
#   load-tests/ab.sh BUILD_A BUILD_B [SCENARIO=postback-unique] [ROUNDS=3]
#   load-tests/ab.sh /tmp/affilync-before target/release/affilync postback-unique 4
#
# WRK_CONNECTIONS (64), WRK_THREADS (1) and WRK_DURATION (10s) set each run; AB_PORT (8090)
# and AB_BASELINE_PORT (8099) the ports. Needs wrk, python3, target/release/affilync-load
# and target/release/affilync-baseline. Extra service settings go in the environment.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_a="$1"; build_b="$2"; scenario="${3:-postback-unique}"; rounds="${4:-3}"
connections="${WRK_CONNECTIONS:-64}"; threads="${WRK_THREADS:-1}"; duration="${WRK_DURATION:-10s}"
port="${AB_PORT:-8090}"; baseline_port="${AB_BASELINE_PORT:-8099}"
service="http://127.0.0.1:$port"; baseline="http://127.0.0.1:$baseline_port"
load="${AFFILYNC_LOAD_BIN:-$root/target/release/affilync-load}"
script="$root/load-tests/wrk/$scenario.lua"
[ -f "$script" ] || { echo "no wrk script for $scenario" >&2; exit 2; }
work="$(mktemp -d)"
service_pid=""; baseline_pid=""

stop_service() {
    [ -n "$service_pid" ] || return 0
    # SIGTERM: the service drains and stops its managed ClickHouse before it exits.
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
    service_pid=""
}
cleanup() {
    stop_service
    if [ -n "$baseline_pid" ]; then
        kill "$baseline_pid" 2>/dev/null || true
        wait "$baseline_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
# shellcheck source=load-tests/wrk-setup.sh
source "$root/load-tests/wrk-setup.sh"

"$root/target/release/affilync-baseline" --listen "127.0.0.1:$baseline_port" >"$work/baseline.log" 2>&1 &
baseline_pid=$!

start_service() {
    local build="$1"
    rm -rf "$work/data"
    AFFILYNC_DATA_DIR="$work/data" AFFILYNC_ADMIN_TOKEN=ab AFFILYNC_LISTEN="127.0.0.1:$port" \
        AFFILYNC_RATE_LIMIT_ADDRESS_PER_SECOND=0 "$build" serve >"$work/service.log" 2>&1 &
    service_pid=$!
    for _ in $(seq 120); do
        curl -fs "$service/readyz" >/dev/null 2>&1 && return 0
        kill -0 "$service_pid" 2>/dev/null || break
        sleep 0.5
    done
    echo "$build did not become ready; its log:" >&2
    tail -n 20 "$work/service.log" >&2
    exit 2
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$service_pid/stat"; }
run_wrk() { wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$script" "$1" >"$2"; }

measure() {
    local label="$1" build="$2"
    start_service "$build"
    wrk_setup "$service" ab "$work"
    run_wrk "$baseline" "$work/base.txt"
    local before after
    before="$(cpu_ticks)"
    run_wrk "$service" "$work/svc.txt"
    after="$(cpu_ticks)"
    stop_service
    python3 - "$label" "$before" "$after" "$(getconf CLK_TCK)" "$work/svc.txt" "$work/base.txt" <<'PY'
import re, sys
label, before, after, tick, svc, base = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
def read(path):
    text = open(path).read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    answered = int(re.search(r"(\d+) requests in", text).group(1))
    p99 = re.search(r"99%\s+(\S+)", text).group(1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return rate, answered, p99, int(bad.group(1)) if bad else 0
s, b = read(svc), read(base)
cpu_us = (after - before) * 1e6 / tick / max(s[1], 1)
print(f"{label}  service {s[0]:9.0f} req/s  p99 {s[2]:>8}  non-2xx/3xx {s[3]}  "
      f"baseline {b[0]:9.0f} req/s  ratio {s[0] / b[0]:.3f}  service CPU {cpu_us:5.1f} us/request")
PY
}

echo "A = $build_a"
echo "B = $build_b"
echo "$scenario, wrk -t$threads -c$connections -d$duration, $rounds rounds"
for round in $(seq "$rounds"); do
    # The order flips each round, so neither build always runs first.
    if [ $((round % 2)) -eq 1 ]; then
        measure "A" "$build_a"; measure "B" "$build_b"
    else
        measure "B" "$build_b"; measure "A" "$build_a"
    fi
done
