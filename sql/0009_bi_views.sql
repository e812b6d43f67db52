-- Views for BI tools and clickhouse-client: stable names and columns, each row counted
-- once however the tables below were written (versions, rows shipped twice). They are the
-- supported way to read the data; the tables behind them may change. The README's
-- "Reports" section has example queries whose answers match GET /api/reports.

-- Every conversion once, in its latest version: current status, note and commission.
-- Times are UTC.
CREATE VIEW IF NOT EXISTS bi_conversions AS
SELECT
    conversion_id,
    brand_id,
    order_id,
    created_at,
    updated_at,
    source,
    campaign_id,
    affiliate_id,
    link_id,
    click_id,
    attribution_method,
    click_time,
    seconds_from_click,
    event_type,
    amount,
    currency,
    commission_amount,
    commission_currency,
    commission_rule,
    status,
    status_reason,
    note,
    metadata.key AS metadata_keys,
    metadata.value AS metadata_values
FROM conversions FINAL;

-- Every click on a tracking link once.
CREATE VIEW IF NOT EXISTS bi_clicks AS
SELECT click_id, clicked_at, brand_id, campaign_id, affiliate_id, link_id,
       sub1, sub2, sub3, sub4, sub5
FROM clicks FINAL;

-- Conversions by UTC day from the report rollups (as fresh as their last refresh, a few
-- seconds): counts and sums of each status, money per currency.
CREATE VIEW IF NOT EXISTS bi_daily_conversions AS
SELECT
    brand_id,
    day,
    campaign_id,
    affiliate_id,
    link_id,
    event_type,
    currency,
    commission_currency,
    sum(n_pending + n_approved + n_rejected) AS conversions,
    sum(n_pending) AS pending,
    sum(n_approved) AS approved,
    sum(n_rejected) AS rejected,
    sum(amount_pending + amount_approved + amount_rejected) AS amount,
    sum(commission_pending + commission_approved + commission_rejected) AS commission
FROM (
    SELECT *, toDate(hour, 'UTC') AS day, pending AS n_pending, approved AS n_approved,
           rejected AS n_rejected
    FROM report_conversions_hourly FINAL
)
GROUP BY brand_id, day, campaign_id, affiliate_id, link_id, event_type, currency,
         commission_currency;

-- Clicks by UTC day from the report rollups.
CREATE VIEW IF NOT EXISTS bi_daily_clicks AS
SELECT brand_id, toDate(hour, 'UTC') AS day, campaign_id, affiliate_id, link_id,
       sum(clicks) AS clicks
FROM report_clicks_hourly FINAL
GROUP BY brand_id, day, campaign_id, affiliate_id, link_id;
