#!/usr/bin/env bash
# Latency of GET /api/conversions for one brand, as the speed issue measures it with ten
# million conversions stored (after `affilync-load setup --save s.json` and
# `affilync-load fill --setup s.json --rows 10000000 --days 90`): sequential requests,
# p50 / p90 / p99 / max. Exits non-zero if any answer is not 200.
#
#   load-tests/list-latency.sh http://127.0.0.1:8090 <brand key> 'per_page=100' [requests]
set -uo pipefail
base=$1
key=$2
query=$3
requests=${4:-40}
for _ in $(seq "$requests"); do
    curl -s -o /dev/null -w "%{http_code} %{time_total}\n" -H "Authorization: Bearer $key" \
        "$base/api/conversions?$query"
done | sort -k2 -n | awk '
    $1 != 200 { failed++ }
    { ms[NR] = $2 * 1000 }
    END {
        if (failed) { printf "%d of %d requests were not answered 200\n", failed, NR; exit 1 }
        printf "p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (%d requests)\n",
            ms[int(NR * 0.5) + 1], ms[int(NR * 0.9)], ms[int(NR * 0.99)], ms[NR], NR
    }'
