#!/usr/bin/env bash
# Steady load, measured from the outside: new conversions at a fixed rate, and every 100 ms
# the service's journal lag (how long the oldest acknowledged conversion has waited for
# ClickHouse, hence for the listing); then INSERTs per second per table, the largest number
# of active parts in any partition seen, and the load generator's store check.
#
#   load-tests/steady.sh SERVICE_URL ADMIN_TOKEN CLICKHOUSE_URL [RATE=1000] [SECONDS=60]
#
# CLICKHOUSE_URL must reach the service's database (AFFILYNC_CLICKHOUSE_DATABASE, default
# affilync).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
service="$1"; token="$2"; clickhouse="$3"
rate="${4:-1000}"; seconds="${5:-60}"
database="${AFFILYNC_CLICKHOUSE_DATABASE:-affilync}"
load="${AFFILYNC_LOAD_BIN:-$root/target/release/affilync-load}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

metric() { curl -fsS "$service/metrics" | awk -v name="$1" '$1 == name {print $2}'; }
inserts() { metric "affilync_shipper_insert_seconds_count{table=\"$1\"}"; }
most_parts() {
    curl -fsS "$clickhouse" --data-binary "SELECT max(c) FROM (SELECT count() AS c FROM system.parts
        WHERE active AND database = '$database' GROUP BY table, partition)"
}

before_conversions=$(inserts conversions); before_commissions=$(inserts commissions)
"$load" run --target "$service" --admin-token "$token" --clickhouse-url "$clickhouse" \
    --scenario postback-unique -c 64 --rate "$rate" --duration "${seconds}s" >"$work/run.txt" 2>&1 &
run=$!
started=$(date +%s.%N)
max_lag=0; max_parts=0; samples=0
while kill -0 "$run" 2>/dev/null; do
    lag=$(metric affilync_journal_lag_seconds)
    max_lag=$(python3 -c "print(max($max_lag, ${lag:-0}))")
    samples=$((samples + 1))
    if [ $((samples % 10)) -eq 0 ]; then
        parts=$(most_parts); [ "${parts:-0}" -gt "$max_parts" ] && max_parts=$parts
    fi
    sleep 0.1
done
wait "$run" || true
ended=$(date +%s.%N)
per_second() { python3 -c "print(f'{($1) / ($ended - $started):.2f}')"; }
echo "INSERTs per second: conversions $(per_second "$(inserts conversions) - $before_conversions"), commissions $(per_second "$(inserts commissions) - $before_commissions")"
echo "journal lag (acknowledged, not yet in ClickHouse): max ${max_lag} s over $samples samples"
echo "active parts in any one partition: max $max_parts"
grep -E "requests|latency|statuses|store check|result" "$work/run.txt"
