//! The pixel in a real browser: headless Chromium follows an affiliate's tracking link
//! served by the service (on `127.0.0.1`), lands on the brand's shop (on `localhost`,
//! another site), buys, and the thank-you page's pixel reports the conversion. Each test
//! then finds the conversion in ClickHouse with the affiliate, campaign, commission, source
//! and attribution method that the click evidence the browser kept calls for.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install -y chromium
//! chromium-driver`); the tests fail, not skip, without them.

use std::time::{Duration, Instant};

use crate::browser_support::chromium::{Browser, Chromedriver, ThirdPartyCookies};
use crate::browser_support::shop::Shop;
use crate::common::{Network, TestApp, metric_value};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// How long a conversion may take from the page's beacon to ClickHouse.
const STORE_DEADLINE: Duration = Duration::from_secs(20);

/// The service, a brand with a shop on another site, an affiliate, and chromedriver.
struct Scene {
    app: TestApp,
    shop: Shop,
    brand: Value,
    affiliate: Value,
    driver: Chromedriver,
}

impl Scene {
    async fn new() -> Scene {
        let driver = Chromedriver::start().await;
        let app = TestApp::spawn().await;
        let brand = app
            .create("/api/admin/brands", json!({"name": "Shop"}))
            .await;
        let affiliate = app
            .create("/api/admin/affiliates", json!({"name": "Publisher"}))
            .await;
        let shop = Shop::start(&app.base, brand["brand_id"].as_str().unwrap()).await;
        assert_ne!(
            url::Url::parse(shop.origin()).unwrap().host(),
            url::Url::parse(&app.base).unwrap().host(),
            "the shop is another site than the tracking host"
        );
        Scene {
            app,
            shop,
            brand,
            affiliate,
            driver,
        }
    }

    /// A 10% campaign whose tracking link lands on the shop's `landing` page.
    async fn campaign_landing_on(&self, landing: &str) -> Network {
        let campaign = self
            .app
            .create(
                "/api/admin/campaigns",
                json!({
                    "brand_id": self.brand["brand_id"],
                    "name": format!("Spring sale to {landing}"),
                    "landing_url": self.shop.url(landing),
                    "currency": "USD",
                    "cookie_window_days": 30,
                    "commission": {"sale": {"percent": "10"}},
                }),
            )
            .await;
        self.app
            .network_for(&self.brand, &self.affiliate, &campaign)
            .await
    }

    /// The person clicks the affiliate's ad and arrives on the shop; returns the click id the
    /// tracking link put in the landing page's URL.
    async fn click_ad(&self, browser: &Browser, net: &Network, landing: &str) -> String {
        browser.goto(&self.shop.ad_for(&net.link_url)).await;
        browser.click("#ad").await;
        let landed = browser.wait_for_page(&self.shop.url(landing)).await;
        landed
            .query_pairs()
            .find(|(key, _)| key == "afk_cid")
            .map(|(_, value)| value.into_owned())
            .expect("the tracking link appends afk_cid to the landing URL")
    }

    /// The conversion of `order` once it is in ClickHouse, or a failed test after the deadline.
    async fn conversion(&self, order: &str) -> Value {
        let sql = format!(
            "SELECT affiliate_id, campaign_id, toString(commission_amount) AS commission, \
             toString(amount) AS amount, source, attribution_method, click_id \
             FROM conversions FINAL WHERE order_id = '{order}'"
        );
        let deadline = Instant::now() + STORE_DEADLINE;
        loop {
            let rows = self.app.clickhouse_rows(&sql).await;
            if let [row] = rows.as_slice() {
                return row.clone();
            }
            assert!(rows.is_empty(), "{order} stored more than once: {rows:?}");
            assert!(
                Instant::now() < deadline,
                "{order} not stored within {STORE_DEADLINE:?}; pixel outcomes:\n{}",
                self.pixel_outcomes().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the service has answered `count` pixel reports with `outcome`.
    async fn wait_for_outcome(&self, outcome: &str, count: f64) {
        let deadline = Instant::now() + STORE_DEADLINE;
        loop {
            let metrics = self.app.metrics().await;
            let seen = metric_value(
                &metrics,
                "affilync_pixel_reports_total",
                &[("outcome", outcome)],
            );
            if seen >= count {
                assert_eq!(seen, count, "pixel reports answered {outcome}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {count} pixel reports answered {outcome}; outcomes:\n{}",
                self.pixel_outcomes().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn pixel_outcomes(&self) -> String {
        let metrics = self.app.metrics().await;
        metrics
            .lines()
            .filter(|line| line.starts_with("affilync_pixel_reports_total"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Asserts the tracking host's own cookie is in the browser's jar with `click`: the
    /// browser kept it, whatever it then did with it. Leaves the browser on the tracking host.
    async fn assert_tracking_cookie_kept(&self, browser: &Browser, click: &str) {
        browser.goto(&self.app.url("/healthz")).await;
        let cookie = browser
            .cookie("afk_cid")
            .await
            .expect("the tracking host's afk_cid cookie is in the browser");
        assert_eq!(cookie.value(), click);
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.secure(), Some(true));
    }
}

/// What every pixel conversion of these tests is: 99.99 USD at 10%, through the pixel.
fn assert_pixel_sale(row: &Value, net: &Network, method: &str, click: &str) {
    assert_eq!(row["affiliate_id"], net.affiliate_id, "{row}");
    assert_eq!(row["campaign_id"], net.campaign_id, "{row}");
    let money = |field: &str| row[field].as_str().unwrap().parse::<Decimal>().unwrap();
    assert_eq!(money("amount"), "99.99".parse().unwrap(), "{row}");
    assert_eq!(money("commission"), "10.00".parse().unwrap(), "{row}");
    assert_eq!(row["source"], "pixel", "{row}");
    assert_eq!(row["attribution_method"], method, "{row}");
    assert_eq!(row["click_id"], click, "{row}");
}

#[tokio::test]
async fn the_landing_page_keeps_the_click_first_party_for_the_thank_you_page() {
    let scene = Scene::new().await;
    let net = scene.campaign_landing_on("/landing?utm_source=blog").await;
    let browser = scene.driver.open(ThirdPartyCookies::Allowed).await;

    let click = scene.click_ad(&browser, &net, "/landing").await;
    assert!(
        browser
            .document_cookie()
            .await
            .contains(&format!("afk_cid={click}")),
        "the pixel on the landing page keeps the click id as a first-party cookie"
    );
    browser.goto(&scene.shop.thank_you("fp-1", None)).await;

    let row = scene.conversion("fp-1").await;
    assert_pixel_sale(&row, &net, "cookie", &click);
    scene.wait_for_outcome("stored", 1.0).await;
    browser.close().await;
}

#[tokio::test]
async fn a_conversion_on_the_landing_page_is_attributed_by_the_click_id_in_its_url() {
    let scene = Scene::new().await;
    let net = scene.campaign_landing_on("/thanks?order=lead-1").await;
    let browser = scene.driver.open(ThirdPartyCookies::Allowed).await;

    let click = scene.click_ad(&browser, &net, "/thanks").await;

    let row = scene.conversion("lead-1").await;
    assert_pixel_sale(&row, &net, "click_id", &click);
    browser.close().await;
}

#[tokio::test]
async fn with_third_party_cookies_blocked_the_first_party_cookie_still_attributes() {
    let scene = Scene::new().await;
    let to_plain = scene.campaign_landing_on("/plain").await;
    let to_landing = scene.campaign_landing_on("/landing").await;
    let browser = scene.driver.open(ThirdPartyCookies::Blocked).await;

    // The control: a click whose only trace is the tracking host's cookie. The browser keeps
    // that cookie, but with third-party cookies blocked it does not send it with the beacon
    // from the shop, so the report reaches the service without any click.
    let tracked_only = scene.click_ad(&browser, &to_plain, "/plain").await;
    assert!(!browser.document_cookie().await.contains("afk_cid"));
    browser.goto(&scene.shop.thank_you("blocked-1", None)).await;
    scene.wait_for_outcome("no_click", 1.0).await;
    assert_eq!(
        scene
            .app
            .count_where("conversions", "order_id = 'blocked-1'")
            .await,
        0
    );
    scene
        .assert_tracking_cookie_kept(&browser, &tracked_only)
        .await;

    // The same browser through a landing page with the pixel: attributed first-party.
    let click = scene.click_ad(&browser, &to_landing, "/landing").await;
    browser.goto(&scene.shop.thank_you("blocked-2", None)).await;
    let row = scene.conversion("blocked-2").await;
    assert_pixel_sale(&row, &to_landing, "cookie", &click);
    browser.close().await;
}

#[tokio::test]
async fn the_tracking_cookie_alone_attributes_when_third_party_cookies_are_allowed() {
    let scene = Scene::new().await;
    let net = scene.campaign_landing_on("/plain").await;
    let browser = scene.driver.open(ThirdPartyCookies::Allowed).await;

    let click = scene.click_ad(&browser, &net, "/plain").await;
    assert!(
        !browser.document_cookie().await.contains("afk_cid"),
        "no pixel on the landing page, so no first-party cookie"
    );
    browser.goto(&scene.shop.thank_you("tracked-1", None)).await;

    let row = scene.conversion("tracked-1").await;
    assert_pixel_sale(&row, &net, "cookie", &click);
    scene.assert_tracking_cookie_kept(&browser, &click).await;
    browser.close().await;
}

#[tokio::test]
async fn a_second_device_is_attributed_by_the_customer_email() {
    let scene = Scene::new().await;
    let net = scene.campaign_landing_on("/landing").await;

    let laptop = scene.driver.open(ThirdPartyCookies::Allowed).await;
    let click = scene.click_ad(&laptop, &net, "/landing").await;
    laptop
        .goto(&scene.shop.thank_you("laptop-1", Some("Jane@Example.com")))
        .await;
    assert_pixel_sale(&scene.conversion("laptop-1").await, &net, "cookie", &click);
    laptop.close().await;

    // Another device: a profile that never saw the click, only the same customer.
    let phone = scene.driver.open(ThirdPartyCookies::Allowed).await;
    phone
        .goto(&scene.shop.thank_you("phone-1", Some("jane@example.com")))
        .await;
    assert_eq!(phone.document_cookie().await, "", "a fresh profile");
    let row = scene.conversion("phone-1").await;
    assert_pixel_sale(&row, &net, "email", &click);
    phone.close().await;
}

#[tokio::test]
async fn an_order_reported_twice_is_one_conversion() {
    let scene = Scene::new().await;
    let net = scene.campaign_landing_on("/landing").await;
    let browser = scene.driver.open(ThirdPartyCookies::Allowed).await;

    let click = scene.click_ad(&browser, &net, "/landing").await;
    browser.goto(&scene.shop.thank_you("twice-1", None)).await;
    assert_pixel_sale(&scene.conversion("twice-1").await, &net, "cookie", &click);

    browser.reload().await;
    scene.wait_for_outcome("replayed", 1.0).await;
    let twice = |from: &'static str| scene.app.count_where(from, "order_id = 'twice-1'");
    assert_eq!(twice("conversions FINAL").await, 1);
    assert_eq!(twice("conversions").await, 1, "a replay writes nothing");
    browser.close().await;
}
