#!/usr/bin/env bash
# The service's resident memory, idle and under new conversions flat out: RSS before the run,
# the peak while it runs (sampled every 200 ms) and 10 s after, then the load generator's
# rate and store check.
#
#   load-tests/memory.sh SERVICE_URL ADMIN_TOKEN CLICKHOUSE_URL SERVICE_PID [CONNECTIONS=1024] [SECONDS=20]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
service="$1"; token="$2"; clickhouse="$3"; pid="$4"
connections="${5:-1024}"; seconds="${6:-20}"
load="${AFFILYNC_LOAD_BIN:-$root/target/release/affilync-load}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

rss_mb() { echo $(( $(ps -o rss= -p "$pid") / 1024 )); }

idle=$(rss_mb)
"$load" run --target "$service" --admin-token "$token" --clickhouse-url "$clickhouse" \
    --scenario postback-unique -c "$connections" --duration "${seconds}s" >"$work/run.txt" 2>&1 &
run=$!
peak=$idle
while kill -0 "$run" 2>/dev/null; do
    now=$(rss_mb); [ "$now" -gt "$peak" ] && peak=$now
    sleep 0.2
done
wait "$run" || { cat "$work/run.txt"; exit 1; }
sleep 10
echo "rss idle ${idle} MB, peak ${peak} MB during ${seconds}s at ${connections} connections, $(rss_mb) MB 10 s after"
grep -E '^ *(requests|store check)' "$work/run.txt"
