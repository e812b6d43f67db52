#!/usr/bin/env bash
# Latency of GET /api/reports for one brand: sequential requests, p50 / p90 / max, and
# which figures answered (the X-Affilync-Report-Source header: rollups or raw). Exits
# non-zero if any answer is not 200.
#
#   load-tests/report-latency.sh http://127.0.0.1:8090 <brand key> 'group_by=day,campaign&date_from=…' [requests]
set -uo pipefail
base=$1
key=$2
query=$3
requests=${4:-20}
source=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $key" "$base/api/reports?$query" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "x-affilync-report-source" { print $2 }')
for _ in $(seq "$requests"); do
    curl -s -o /dev/null -w "%{http_code} %{time_total}\n" -H "Authorization: Bearer $key" \
        "$base/api/reports?$query"
done | sort -k2 -n | awk -v source="$source" '
    $1 != 200 { failed++ }
    { ms[NR] = $2 * 1000 }
    END {
        if (failed) { printf "%d of %d requests were not answered 200\n", failed, NR; exit 1 }
        printf "p50 %.1f ms  p90 %.1f ms  max %.1f ms  (%d requests, %s)\n",
            ms[int(NR * 0.5) + 1], ms[int(NR * 0.9)], ms[NR], NR, source
    }'
