#!/usr/bin/env bash
# The service on :8080 with demo data, on its own private ClickHouse: installs Debian's
# clickhouse-server if it is missing, then `cargo run --release --bin affilync -- demo`.
# Arguments go to `affilync demo` (e.g. --listen 127.0.0.1:9090).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
ensure_packages clickhouse-server
exec cargo run --release --bin affilync -- demo "$@"
