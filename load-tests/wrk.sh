#!/usr/bin/env bash
# wrk as a second, lighter client: the same scenario against the do-nothing baseline and
# against the service, in one invocation, and the service's rate as a share of the
# baseline's. wrk loads a server harder than affilync-load (it does less per request), so
# its ratios differ from the load generator's; both are reported.
#
#   load-tests/wrk.sh SERVICE_URL BASELINE_URL ADMIN_TOKEN [SCENARIO...]
#   load-tests/wrk.sh http://127.0.0.1:8090 http://127.0.0.1:8099 secret postback-unique replay clicks
#
# WRK_CONNECTIONS (64), WRK_THREADS (1) and WRK_DURATION (10s) set the run. Needs wrk,
# python3 and target/release/affilync-load (for the setup: brand, key, links, click ids).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
service="$1"; baseline="$2"; token="$3"; shift 3
scenarios="${*:-postback-unique replay clicks}"
connections="${WRK_CONNECTIONS:-64}"
threads="${WRK_THREADS:-1}"
duration="${WRK_DURATION:-10s}"
load="${AFFILYNC_LOAD_BIN:-$root/target/release/affilync-load}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# shellcheck source=load-tests/wrk-setup.sh
source "$root/load-tests/wrk-setup.sh"
wrk_setup "$service" "$token" "$work"

rate() { awk '/^Requests\/sec/ {print $2}' "$1"; }
latency() { awk '/^ +(50|99)%/ {printf "%s=%s ", $1, $2}' "$1"; }
errors() { awk '/Non-2xx or 3xx/ {print $5} /Socket errors/ {print $0}' "$1" | tr '\n' ' '; }

for scenario in $scenarios; do
    script="$root/load-tests/wrk/$scenario.lua"
    [ -f "$script" ] || { echo "no wrk script for $scenario" >&2; exit 2; }
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$script" "$baseline" >"$work/base.txt"
    wrk -t"$threads" -c"$connections" -d"$duration" --latency -s "$script" "$service" >"$work/svc.txt"
    b="$(rate "$work/base.txt")"; s="$(rate "$work/svc.txt")"
    printf '%-16s service %10s req/s (%s%s)  baseline %10s req/s (%s)  ratio %s\n' \
        "$scenario" "$s" "$(latency "$work/svc.txt")" "$(errors "$work/svc.txt")" "$b" \
        "$(latency "$work/base.txt")" "$(python3 -c "print(round($s/$b, 2))")"
done
