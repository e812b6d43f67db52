#!/usr/bin/env bash
# Smoke run of the load generator against a real service, for CI: starts `affilync serve`
# with its own managed ClickHouse in a temporary directory, runs postback-unique, replay
# and conflict for a few seconds each with the store check (0 lost, 0 duplicated, nothing
# unexpected), stops the service with SIGTERM and exits non-zero if any check failed or
# the service did not stop cleanly, and checks the operations kit (ops/check.sh) against
# the node. It asserts no speed.
#
#   load-tests/smoke.sh                                   # builds both binaries (debug)
#   load-tests/smoke.sh path/to/affilync path/to/affilync-load
#
# SMOKE_SECONDS (default 3) sets each scenario's length; SMOKE_SCENARIOS (space separated)
# the scenarios.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ $# -ge 2 ]; then
    service_bin="$1"
    load_bin="$2"
else
    (cd "$root" && cargo build --quiet -p ingest -p affilync-load)
    target_dir="${CARGO_TARGET_DIR:-$root/target}"
    service_bin="$target_dir/debug/affilync"
    load_bin="$target_dir/debug/affilync-load"
fi
for bin in "$service_bin" "$load_bin"; do
    [ -x "$bin" ] || { echo "smoke: $bin is not an executable" >&2; exit 2; }
done
command -v curl >/dev/null || { echo "smoke: curl is needed to wait for /healthz" >&2; exit 2; }

seconds="${SMOKE_SECONDS:-3}"
scenarios="${SMOKE_SCENARIOS:-postback-unique replay conflict}"
work="$(mktemp -d "${TMPDIR:-/tmp}/affilync-smoke.XXXXXX")"
log="$work/service.log"
service_pid=""

stop_service() {
    [ -n "$service_pid" ] || return 0
    local pid="$service_pid" status=0
    service_pid=""
    kill -TERM "$pid" 2>/dev/null || true
    # The service drains in-flight requests and queued rows before it exits.
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "smoke: the service did not stop within 30 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
        status=1
    fi
    wait "$pid" 2>/dev/null || status=$?
    return "$status"
}

cleanup() {
    local status=$?
    stop_service || true
    if [ "$status" -ne 0 ] && [ -f "$log" ]; then
        echo "smoke: last lines of the service log:" >&2
        tail -n 40 "$log" >&2 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

token="smoke-$RANDOM$RANDOM"
# Port 0: the service takes a free port and names it in its log.
NO_COLOR=1 RUST_LOG=info \
AFFILYNC_ADMIN_TOKEN="$token" \
AFFILYNC_DATA_DIR="$work/data" \
AFFILYNC_LISTEN=127.0.0.1:0 \
AFFILYNC_RATE_LIMIT_ADDRESS_PER_SECOND=0 \
    "$service_bin" serve >"$log" 2>&1 &
service_pid=$!

address=""
clickhouse_port=""
for _ in $(seq 1 600); do
    kill -0 "$service_pid" 2>/dev/null || { echo "smoke: the service exited at start" >&2; exit 1; }
    plain="$(sed 's/\x1b\[[0-9;]*m//g' "$log")"
    address="$(grep -o 'affilync is serving address=[0-9.:]*' <<<"$plain" | head -n 1 | cut -d= -f2 || true)"
    clickhouse_port="$(grep -o 'managed clickhouse started http_port=[0-9]*' <<<"$plain" | head -n 1 | cut -d= -f2 || true)"
    if [ -n "$address" ] && [ -n "$clickhouse_port" ] && curl -fsS "http://$address/healthz" >/dev/null 2>&1; then
        break
    fi
    address=""
    sleep 0.1
done
[ -n "$address" ] || { echo "smoke: the service did not become healthy within 60 s" >&2; exit 1; }
echo "smoke: service on http://$address, ClickHouse on port $clickhouse_port"

failed=""
for scenario in $scenarios; do
    echo "smoke: $scenario for ${seconds}s"
    if ! "$load_bin" run \
        --scenario "$scenario" \
        --target "http://$address" \
        --admin-token "$token" \
        --clickhouse-url "http://127.0.0.1:$clickhouse_port" \
        --duration "${seconds}s" \
        --connections 16 \
        --clicks 20 \
        --pool 200 \
        --json "$work/$scenario.json"; then
        failed="$failed $scenario"
    fi
done

# The operations kit against this node, after load so every series has samples: the
# rules and scrape config load, /metrics passes promtool's lint, and every metric the
# dashboard and the rules use exists. SMOKE_OPS_CHECK=required (CI) fails without promtool.
if command -v promtool >/dev/null; then
    bash "$root/ops/check.sh" "http://$address/metrics" || failed="$failed ops-kit"
elif [ "${SMOKE_OPS_CHECK:-}" = required ]; then
    echo "smoke: promtool (Debian's prometheus package) is needed for the ops kit check" >&2
    failed="$failed ops-kit"
else
    echo "smoke: promtool not installed; the ops kit was not checked"
fi

if ! stop_service; then
    echo "smoke: the service did not stop cleanly" >&2
    failed="$failed shutdown"
fi
if [ -n "$failed" ]; then
    echo "smoke: FAILED:$failed" >&2
    exit 1
fi
echo "smoke: passed ($scenarios)"
