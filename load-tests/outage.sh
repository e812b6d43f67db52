#!/usr/bin/env bash
# A ClickHouse outage under load, measured: sends new conversions at a fixed rate, freezes
# ClickHouse (SIGSTOP) for a while in the middle, lets it go, and prints once a second the
# service's journal backlog and lag; the load generator's store check (after the journal
# drains) then says whether anything was lost or doubled, and its statuses whether anything
# was refused.
#
#   load-tests/outage.sh SERVICE_URL ADMIN_TOKEN CLICKHOUSE_URL CLICKHOUSE_PID \
#       [RATE=500] [OUTAGE_SECONDS=30] [SECONDS=60]
#
# CLICKHOUSE_PID is the clickhouse-server's pid (the managed one's is in
# AFFILYNC_DATA_DIR/clickhouse/clickhouse.pid).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
service="$1"; token="$2"; clickhouse="$3"; pid="$4"
rate="${5:-500}"; outage="${6:-30}"; seconds="${7:-60}"
load="${AFFILYNC_LOAD_BIN:-$root/target/release/affilync-load}"
work="$(mktemp -d)"
trap 'kill -CONT "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

gauge() { curl -fsS "$service/metrics" | awk -v name="$1" '$1 == name {print $2}'; }

"$load" run --target "$service" --admin-token "$token" --clickhouse-url "$clickhouse" \
    --scenario postback-unique -c 64 --rate "$rate" --duration "${seconds}s" \
    --drain-timeout 10m >"$work/run.txt" 2>&1 &
run=$!
start=$(date +%s)
frozen_at=$((start + (seconds - outage) / 2))
thawed=""
while kill -0 "$run" 2>/dev/null; do
    now=$(date +%s)
    if [ -z "$thawed" ] && [ "$now" -ge "$frozen_at" ] && [ "$now" -lt $((frozen_at + outage)) ]; then
        kill -STOP "$pid"; state="frozen"
    elif [ "$now" -ge $((frozen_at + outage)) ] && [ -z "$thawed" ]; then
        kill -CONT "$pid"; thawed="$now"; state="thawed"
    else
        state="${thawed:+running}"; state="${state:-running}"
    fi
    printf '%4ss  clickhouse %-8s pending %8s  lag %6ss\n' "$((now - start))" "$state" \
        "$(gauge affilync_journal_pending_records)" "$(gauge affilync_journal_lag_seconds)"
    sleep 1
done
wait "$run" || true
grep -E "requests|statuses|store check|answers" "$work/run.txt"
