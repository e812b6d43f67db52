#!/usr/bin/env bash
# Synthetic history for one brand: N conversions (30% approved and 10% rejected later, as
# new versions) and M clicks over 90 days, written straight into ClickHouse.
set -euo pipefail
CH=$1; brand=$2; n=${3:-10000000}; m=${4:-50000000}
t0=$(( $(date +%s) - 90*86400 ))
span=$(( 90*86400 ))
q() { curl -sS --fail-with-body "$CH/?database=affilync&max_insert_block_size=1048576" --data-binary @-; }
conv_select() { # version, status expression, where
cat <<SQL
SELECT concat('conv_b', toString(number)), cityHash64(number), '$brand', toString(number), $1,
  toDateTime($t0 + intDiv(number * $span, $n)) AS t, t, 'api',
  concat('camp_', toString(number % 20)), concat('usr_', toString(number % 200)),
  concat('lnk_', toString(number % 1000)), concat('clk_', toString(number * 5)), 'click_id',
  t, toUInt32(0), if(number % 10 = 5, 'lead', 'sale'),
  toDecimal64(number % 20000, 4) / 100,
  multiIf(number % 7 = 0, 'EUR', number % 7 = 1, 'GBP', 'USD'),
  $2, multiIf(number % 7 = 0, 'EUR', number % 7 = 1, 'GBP', 'USD'), 'sale:percent:10',
  $3, '', '', '', [], []
FROM numbers($n) $4
SQL
}
cols="(conversion_id, dedup_key, brand_id, order_id, version, created_at, updated_at, source, campaign_id, affiliate_id, link_id, click_id, attribution_method, click_time, seconds_from_click, event_type, amount, currency, commission_amount, commission_currency, commission_rule, status, status_reason, note, customer_email_sha256, metadata.key, metadata.value)"
start=$(date +%s)
{ echo "INSERT INTO conversions $cols"; conv_select 1 "toDecimal64(number % 20000, 4) / 1000" "'pending'" ""; } | q
echo "conversions v1 $(( $(date +%s) - start )) s"
{ echo "INSERT INTO conversions $cols"; conv_select 2 "toDecimal64(number % 20000, 4) / 1000" "'approved'" "WHERE number % 10 < 3"; } | q
{ echo "INSERT INTO conversions $cols"; conv_select 2 "toDecimal64(0, 4)" "'rejected'" "WHERE number % 10 = 9"; } | q
echo "conversions v2 $(( $(date +%s) - start )) s"
q <<SQL
INSERT INTO clicks SELECT concat('clk_', toString(number)), toDateTime($t0 + intDiv(number * $span, $m)),
  concat('lnk_', toString(number % 1000)), concat('camp_', toString(number % 20)),
  concat('usr_', toString(number % 200)), '$brand', '127.0.0.1', '', 'bench', '', '', '', '', '', ''
FROM numbers($m)
SQL
echo "clicks $(( $(date +%s) - start )) s"
