#!/usr/bin/env bash
# Greps the log of a whole test run (AFFILYNC_TEST_LOG=<file> scripts/test.sh) for what must
# never be logged: API keys (afk_ and 32 characters), the tests' admin token and click
# secret, e-mail addresses (plain or percent-encoded). Exits 1 naming the first hits.
#
#   scripts/check-test-log.sh target/test-run.log
set -euo pipefail
log="$1"
[ -s "$log" ] || { echo "check-test-log: $log is empty or missing" >&2; exit 2; }
patterns=(
    'afk_[A-Za-z0-9_-]{32}'
    'test-admin-token'
    'test-click-secret'
    '[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}'
)
found=0
for pattern in "${patterns[@]}"; do
    if grep -En -m 3 -- "$pattern" "$log" >&2; then
        echo "check-test-log: the log holds /$pattern/ (lines above)" >&2
        found=1
    fi
done
[ "$found" -eq 0 ] || exit 1
echo "check-test-log: $(wc -l <"$log") lines, no keys, tokens, secrets or e-mails"
