#!/usr/bin/env bash
# Checks the operations kit against a running node:
#   ops/check.sh http://127.0.0.1:8080/metrics
# - the alert rules and the example scrape config load (promtool check rules / config);
# - the node's /metrics passes promtool's lint (promtool check metrics);
# - every affilync_* metric the dashboard and the rules use is exposed by the node.
# promtool comes with Debian's `prometheus` package.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
metrics_url="$1"
exposed="$(mktemp)"
trap 'rm -f "$exposed"' EXIT

promtool check rules "$here/prometheus/alerts.yml"
promtool check config "$here/prometheus/prometheus.yml"
curl -fsS "$metrics_url" >"$exposed"
promtool check metrics <"$exposed"

# Names a node exposes: each sample's name, and each histogram's base name.
names="$(grep -v '^#' "$exposed" | sed -E 's/[{ ].*//' | sort -u)"
used="$(grep -ohE 'affilync_[a-z_]+' "$here/grafana/affilync.json" "$here/prometheus/alerts.yml" | sort -u)"
missing=0
for name in $used; do
    if ! grep -qxF "$name" <<<"$names"; then
        echo "not exposed by the node: $name" >&2
        missing=1
    fi
done
[ "$missing" -eq 0 ] || exit 1
echo "ops kit: $(wc -w <<<"$used") metrics used by the dashboard and rules, all exposed"
