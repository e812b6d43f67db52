-- Clicks on tracking links, written in batches after the redirect. Attribution never reads
-- this table (the click id carries its link and time under a MAC); it is for reports.
-- ReplacingMergeTree on the click id makes a retried batch harmless.
CREATE TABLE IF NOT EXISTS clicks (
    click_id      String,
    clicked_at    DateTime,
    link_id       String,
    campaign_id   String,
    affiliate_id  String,
    brand_id      String,
    ip            String,
    forwarded_for String,
    user_agent    String,
    referer       String,
    sub1          String,
    sub2          String,
    sub3          String,
    sub4          String,
    sub5          String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(clicked_at)
ORDER BY (brand_id, clicked_at, click_id);
