#!/usr/bin/env bash
# Every test, against private ClickHouse servers the tests start: installs what the tests
# drive when it is missing (Debian's clickhouse-server; clickhouse-client and zookeeperd
# for the 2x2 cluster of the cluster tests; tzdata for the reports' zones; chromium,
# chromium-driver and nodejs for the pixel's browser and script tests), then
# `cargo test --workspace`.
# Arguments go to cargo test (e.g. -p ingest --test api durability).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
ensure_packages clickhouse-server clickhouse-client zookeeperd tzdata chromium chromium-driver nodejs
exec cargo test --workspace "$@"
