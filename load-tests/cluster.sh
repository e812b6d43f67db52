#!/usr/bin/env bash
# Two ingest nodes on a 2 shard x 2 replica ClickHouse cluster against one node on one
# managed server, in one invocation: postback-unique on the same total number of
# connections (half on each node of the pair), each run ending with the load generator's
# store check (0 lost, 0 duplicated). Prints each run's rate and p99 and the ratios.
#
#   load-tests/cluster.sh [path/to/affilync path/to/affilync-load]   # default: release builds
#
# CLUSTER_LOAD_SECONDS (default 15) and CLUSTER_LOAD_CONNECTIONS (default 64) set the runs;
# the cluster uses PORT_BASE 30000 so that it never meets a cluster on the default ports.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
service_bin="${1:-$root/target/release/affilync}"
load_bin="${2:-$root/target/release/affilync-load}"
seconds="${CLUSTER_LOAD_SECONDS:-15}"
connections="${CLUSTER_LOAD_CONNECTIONS:-64}"
work="$(mktemp -d "${TMPDIR:-/tmp}/affilync-cluster-load.XXXXXX")"
token="load-$RANDOM$RANDOM"
pids=()

cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    "$root/ops/cluster/stop.sh" "$work/cluster" >/dev/null 2>&1 || true
    [ "$status" -eq 0 ] && rm -rf "$work" || echo "cluster-load: logs kept in $work" >&2
    exit "$status"
}
trap cleanup EXIT

# start_node NAME ENV...: starts `affilync serve` on a free port; sets $address.
start_node() {
    local name=$1 log="$work/$1.log"
    shift
    env NO_COLOR=1 RUST_LOG=info AFFILYNC_ADMIN_TOKEN="$token" AFFILYNC_CLICK_SECRET="$token" \
        AFFILYNC_DATA_DIR="$work/$name" AFFILYNC_LISTEN=127.0.0.1:0 "$@" \
        "$service_bin" serve >"$log" 2>&1 &
    pids+=($!)
    address=""
    for _ in $(seq 1 600); do
        address="$(grep -o 'affilync is serving address=[0-9.:]*' "$log" | head -n 1 | cut -d= -f2 || true)"
        [ -n "$address" ] && curl -fsS "http://$address/healthz" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "cluster-load: $name did not start; see $log" >&2
    exit 1
}

stop_nodes() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}

# cpu_ticks PID...: user + system clock ticks the processes have used so far.
cpu_ticks() {
    local pid total=0
    for pid in "$@"; do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

load() {
    local target=$1 clickhouse=$2 conns=$3 json=$4
    "$load_bin" run --scenario postback-unique --target "http://$target" --admin-token "$token" \
        --clickhouse-url "$clickhouse" --duration "${seconds}s" --connections "$conns" \
        --json "$json" >"$json.txt" 2>&1
}

echo "cluster-load: one node on one server, $connections connections, ${seconds}s"
start_node single
single_ch="http://127.0.0.1:$(grep -o 'managed clickhouse started http_port=[0-9]*' "$work/single.log" | head -n 1 | cut -d= -f2)"
single_ch_pid="$(cat "$work/single/clickhouse/clickhouse.pid")"
before=("$(cpu_ticks "${pids[@]}")" "$(cpu_ticks "$single_ch_pid")")
load "$address" "$single_ch" "$connections" "$work/single.json"
echo "$(($(cpu_ticks "${pids[@]}") - before[0])) $(($(cpu_ticks "$single_ch_pid") - before[1]))" >"$work/single.cpu"
stop_nodes

echo "cluster-load: two nodes on the 2x2 cluster, $((connections / 2)) connections each"
PORT_BASE=30000 "$root/ops/cluster/start.sh" "$work/cluster" >"$work/cluster.env"
urls="$(grep '^AFFILYNC_CLICKHOUSE_URL=' "$work/cluster.env" | cut -d= -f2)"
start_node a AFFILYNC_CLICKHOUSE_CLUSTER=affilync AFFILYNC_CLICKHOUSE_URL="$urls"
address_a=$address
start_node b AFFILYNC_CLICKHOUSE_CLUSTER=affilync AFFILYNC_CLICKHOUSE_URL="$urls"
address_b=$address
first_node="${urls%%,*}"
cluster_pids=($(cat "$work"/cluster/node*/pid "$work/cluster/zk/pid"))
before=("$(cpu_ticks "${pids[@]}")" "$(cpu_ticks "${cluster_pids[@]}")")
load "$address_a" "$first_node" "$((connections / 2))" "$work/a.json" &
load_a=$!
load "$address_b" "$first_node" "$((connections / 2))" "$work/b.json" &
load_b=$!
failed=""
wait "$load_a" || failed="$failed a"
wait "$load_b" || failed="$failed b"
echo "$(($(cpu_ticks "${pids[@]}") - before[0])) $(($(cpu_ticks "${cluster_pids[@]}") - before[1]))" >"$work/cluster.cpu"
stop_nodes

python3 - "$work" <<'PY'
import json, sys
work = sys.argv[1]
def run(name):
    report = json.load(open(f"{work}/{name}.json"))
    service = report.get("service", report)
    v = service.get("verification") or {}
    return service["requests_per_second"], service["latency_us"]["p99"], report.get("passed"), v
single = run("single"); a = run("a"); b = run("b")
total = a[0] + b[0]
print(f"one node, one server : {single[0]:9.0f} req/s  p99 {single[1] / 1000:7.2f} ms  check passed: {single[2]}")
print(f"node a on the cluster: {a[0]:9.0f} req/s  p99 {a[1] / 1000:7.2f} ms  check passed: {a[2]}")
print(f"node b on the cluster: {b[0]:9.0f} req/s  p99 {b[1] / 1000:7.2f} ms  check passed: {b[2]}")
print(f"two nodes / one node : {total / single[0]:.2f} x throughput, p99 {max(a[1], b[1]) / single[1]:.2f} x")
# CPU per 10k conversions (the run includes the store check's reads, which are small).
import os
hz = os.sysconf("SC_CLK_TCK")
def answered(name):
    report = json.load(open(f"{work}/{name}.json"))
    return report.get("service", report)["answered"]
for label, cpu, count in [
    ("one node, one server", "single", answered("single")),
    ("two nodes, cluster  ", "cluster", answered("a") + answered("b")),
]:
    ingest, clickhouse = (int(x) / hz for x in open(f"{work}/{cpu}.cpu").read().split())
    per = 10_000 / count
    print(f"CPU s per 10k conversions, {label}: ingest {ingest * per:.2f}, clickhouse{' + zk' if cpu == 'cluster' else ''} {clickhouse * per:.2f}")
PY
if [ -n "$failed" ] || grep -q '"passed": *false' "$work"/*.json; then
    echo "cluster-load: a store check failed:$failed; see $work" >&2
    exit 1
fi
