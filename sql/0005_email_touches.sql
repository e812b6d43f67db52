-- Cross-device attribution: every attributed conversion that came with a customer e-mail
-- leaves a touch (the click it was credited to). A later conversion of the same e-mail hash
-- with no usable click is credited to the most recent touch within the campaign's window.
-- Sorted by e-mail hash so that one batch's look-up is a primary-key read.
CREATE TABLE IF NOT EXISTS email_touches (
    email_sha256 String,
    brand_id     String,
    click_time   DateTime,
    click_id     String,
    link_id      String,
    touched_at   DateTime
) ENGINE = ReplacingMergeTree
ORDER BY (email_sha256, brand_id, click_time, click_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS email_touches_mv TO email_touches
AS SELECT
    customer_email_sha256 AS email_sha256,
    brand_id,
    assumeNotNull(click_time) AS click_time,
    click_id,
    link_id,
    created_at AS touched_at
FROM conversions
WHERE customer_email_sha256 != '' AND attribution_method != '';

-- Conversions stored before this table existed.
INSERT INTO email_touches
SELECT
    customer_email_sha256 AS email_sha256,
    brand_id,
    assumeNotNull(click_time) AS click_time,
    click_id,
    link_id,
    created_at AS touched_at
FROM conversions
WHERE customer_email_sha256 != '' AND attribution_method != '';
