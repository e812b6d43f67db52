#!/usr/bin/env bash
# Checks the OpenAPI document against the service it describes:
# - the document served at /openapi.json validates as OpenAPI 3.1 (openapi-spec-validator);
# - Schemathesis calls every operation with generated input, against a real node with a
#   test world (admin token, brand key, a real click, link and conversion), and fails on
#   any 5xx, any status, content type, header or body the document does not describe.
#
#   ops/api-check/run.sh [path/to/affilync]      # default: builds the debug binary
#
# API_CHECK_EXAMPLES (default 25) test cases per operation and API_CHECK_SEED (default 1)
# make CI's run bounded and reproducible; a release check runs longer, e.g.
# API_CHECK_EXAMPLES=500 API_CHECK_SEED=$RANDOM. The Python tools go into a virtualenv
# under target/ (pinned versions; PyPI is the only network access needed).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ $# -ge 1 ]; then
    service_bin="$1"
else
    (cd "$root" && cargo build --quiet -p ingest)
    service_bin="${CARGO_TARGET_DIR:-$root/target}/debug/affilync"
fi
examples="${API_CHECK_EXAMPLES:-25}"
seed="${API_CHECK_SEED:-1}"

venv="${CARGO_TARGET_DIR:-$root/target}/api-check-venv"
if [ ! -x "$venv/bin/schemathesis" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        schemathesis==4.32.5 openapi-spec-validator==0.9.0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/affilync-api-check.XXXXXX")"
log="$work/service.log"
service_pid=""
cleanup() {
    local status=$?
    if [ -n "$service_pid" ]; then
        kill -TERM "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$log" ]; then
        echo "api-check: last lines of the service log:" >&2
        tail -n 30 "$log" >&2 || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT

token="api-check-$RANDOM$RANDOM"
# Fuzzing is a flood from one key and one address: no rate limits here.
NO_COLOR=1 RUST_LOG=warn,ingest=info \
AFFILYNC_ADMIN_TOKEN="$token" \
AFFILYNC_DATA_DIR="$work/data" \
AFFILYNC_LISTEN=127.0.0.1:0 \
AFFILYNC_RATE_LIMIT_KEY_PER_SECOND=0 \
AFFILYNC_RATE_LIMIT_ADDRESS_PER_SECOND=0 \
    "$service_bin" serve >"$log" 2>&1 &
service_pid=$!
address=""
for _ in $(seq 1 600); do
    kill -0 "$service_pid" 2>/dev/null || { echo "api-check: the service exited at start" >&2; exit 1; }
    address="$(grep -o 'affilync is serving address=[0-9.:]*' "$log" | head -n 1 | cut -d= -f2 || true)"
    if [ -n "$address" ] && curl -fsS "http://$address/healthz" >/dev/null 2>&1; then
        break
    fi
    address=""
    sleep 0.1
done
[ -n "$address" ] || { echo "api-check: the service did not start within 60 s" >&2; exit 1; }
base="http://$address"

# The test world, made through the admin API as an operator would.
admin() {
    curl -fsS -X POST "$base$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"
}
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['data']['$1'])"; }
brand="$(admin /api/admin/brands '{"name": "Fuzz Shop"}' | field brand_id)"
affiliate="$(admin /api/admin/affiliates '{"name": "Fuzz Publisher"}' | field affiliate_id)"
campaign="$(admin /api/admin/campaigns "{\"brand_id\": \"$brand\", \"name\": \"Fuzz\", \"landing_url\": \"https://shop.example/\", \"commission\": {\"sale\": {\"percent\": \"10\"}}}" | field campaign_id)"
link="$(admin /api/admin/links "{\"campaign_id\": \"$campaign\", \"affiliate_id\": \"$affiliate\"}" | field link_id)"
brand_key="$(admin /api/admin/api-keys "{\"brand_id\": \"$brand\"}" | field api_key)"
location="$(curl -fsS -o /dev/null -w '%{redirect_url}' "$base/c/$link")"
click="$(python3 -c "import sys, urllib.parse as u; print(u.parse_qs(u.urlparse(sys.argv[1]).query)['afk_cid'][0])" "$location")"
conversion="$(curl -fsS -X POST "$base/api/conversions/track" -H "Authorization: Bearer $brand_key" \
    -H 'Content-Type: application/json' -d "{\"click_id\": \"$click\", \"order_id\": \"fuzz-1\", \"amount\": \"10.00\"}" | field conversion_id)"

curl -fsS "$base/openapi.json" >"$work/openapi.json"
"$venv/bin/openapi-spec-validator" "$work/openapi.json"

export AFFILYNC_API_URL="$base" AFFILYNC_ADMIN_TOKEN="$token" AFFILYNC_BRAND_KEY="$brand_key"
export AFFILYNC_CLICK_ID="$click" AFFILYNC_LINK_ID="$link" AFFILYNC_CONVERSION_ID="$conversion"
# From the scratch directory: Schemathesis keeps its cache in the working directory.
cd "$work"
"$venv/bin/schemathesis" --config-file "$root/ops/api-check/schemathesis.toml" run \
    "$base/openapi.json" \
    --seed "$seed" \
    --max-examples "$examples" \
    --phases examples,coverage,fuzzing \
    --workers 1 \
    --request-timeout 10 \
    --no-color
echo "api-check: passed (document valid; schemathesis seed $seed, $examples examples per operation)"
