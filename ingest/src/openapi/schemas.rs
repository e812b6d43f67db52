//! Shapes of the public API that have no Rust type of their own: request bodies that the
//! handlers read field by field (to name the field a bad value is in), the error body, and
//! the error body. The answer types ([`crate::views::ConversionView`]) and the closed sets
//! of strings they use derive their schemas where they are defined.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::views::{ConversionView, EventType, Status};

/// Every error: `{"error": {"code", "message", "field"?}}`; a conflicting order also
/// carries the stored conversion in `data`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// On 409 `order_id_conflict` and `invalid_status_transition`: the conversion as stored.
    #[schema(nullable = false)]
    pub data: Option<ConversionView<'static>>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// invalid_request, unauthorized, forbidden, not_found, order_id_conflict,
    /// invalid_status_transition, payload_too_large, unsupported_media_type,
    /// invalid_field, method_not_allowed, rate_limited, unavailable, internal.
    pub code: String,
    pub message: String,
    /// The request field at fault (422).
    #[schema(nullable = false)]
    pub field: Option<String>,
}

/// A decimal amount: a JSON string (`"99.99"`) or a plain JSON number, read exactly as
/// written; at most the currency's minor digits, at most 10^12.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum AmountInput {
    Text(String),
    Number(f64),
}

/// `POST /api/conversions/track`. Unknown fields are ignored.
#[derive(Serialize, ToSchema)]
pub struct TrackRequest {
    /// The `afk_cid` the tracking link handed out; may be left out with `customer_email`
    /// for cross-device attribution.
    #[schema(nullable = false, max_length = 256)]
    pub click_id: Option<String>,
    /// The brand's order id: the conversion's identity (1-128 printable characters).
    #[schema(min_length = 1, max_length = 128)]
    pub order_id: String,
    pub amount: AmountInput,
    /// ISO 4217; default USD.
    #[schema(nullable = false, example = "USD")]
    pub currency: Option<String>,
    #[schema(nullable = false)]
    pub event_type: Option<EventType>,
    /// Kept only as a salted hash, for cross-device attribution.
    #[schema(nullable = false, max_length = 320)]
    pub customer_email: Option<String>,
    /// Up to 64 string keys and values (scalars are kept as text).
    #[schema(nullable = false)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `GET|POST /api/conversions/postback`: the track fields as query parameters (a POST may
/// also send them as a form body).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostbackParams {
    /// The brand's key, for platforms that can only call a URL (or `Authorization: Bearer`).
    pub api_key: Option<String>,
    pub click_id: Option<String>,
    pub order_id: String,
    pub amount: String,
    pub currency: Option<String>,
    pub event_type: Option<EventType>,
    pub customer_email: Option<String>,
}

/// `PATCH /api/conversions/{id}`.
#[derive(Serialize, ToSchema)]
pub struct StatusChangeRequest {
    /// approved or rejected.
    pub status: Status,
    #[schema(nullable = false, max_length = 1000)]
    pub note: Option<String>,
}

/// `GET /api/conversions`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// A day (`2026-03-01`, from its start) or an RFC 3339 time; 1970-2105.
    pub date_from: Option<String>,
    /// A day (through its end) or an RFC 3339 time; not before `date_from`.
    pub date_to: Option<String>,
    pub campaign_id: Option<String>,
    /// Brands only.
    pub affiliate_id: Option<String>,
    pub status: Option<Status>,
    #[param(minimum = 1)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 1000)]
    pub per_page: Option<u32>,
    /// `meta.next_cursor` of the previous page: the next page, however deep (keyset).
    pub cursor: Option<String>,
    /// Held conversions due for automatic approval from this time (RFC 3339 or a day).
    pub scheduled_approval_from: Option<String>,
    pub scheduled_approval_to: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversionEnvelope {
    pub data: ConversionView<'static>,
}

#[derive(Serialize, ToSchema)]
pub struct ConversionPage {
    pub data: Vec<ConversionView<'static>>,
    pub meta: PageMeta,
}

#[derive(Serialize, ToSchema)]
pub struct PageMeta {
    pub page: u32,
    pub per_page: u32,
    /// Conversions matching the filter, latest versions.
    pub total: u64,
    /// True when counting exactly took too long and `total` is an estimate (it may count
    /// versions ClickHouse has not merged yet, so it can run over); a later listing gets
    /// the exact count once it is done.
    pub total_estimated: bool,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The browser pixel's fields, as query parameters (GET, image fallback) or a JSON body
/// (POST, `navigator.sendBeacon`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PixelParams {
    pub click_id: Option<String>,
    /// url or first_party_cookie: where the page found the click id.
    pub click_source: Option<String>,
    /// For cross-device reports without a click: the shop's brand.
    pub brand_id: Option<String>,
    pub order_id: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub event_type: Option<EventType>,
    pub customer_email: Option<String>,
    /// `gif`: answer a 1x1 GIF instead of 204.
    pub format: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct NameRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CampaignRequest {
    pub brand_id: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// http(s) URL the tracking link redirects to.
    pub landing_url: String,
    #[schema(nullable = false, example = "USD")]
    pub currency: Option<String>,
    #[schema(nullable = false, minimum = 1, maximum = 365)]
    pub cookie_window_days: Option<u16>,
    /// Per event type, `{"percent": "10"}` or `{"flat": "2.50"}`: e.g.
    /// `{"sale": {"percent": "10"}, "lead": {"flat": "2.50"}}`.
    #[schema(nullable = false, value_type = Option<Object>)]
    pub commission: Option<serde_json::Value>,
    /// Days a conversion stays pending before it is approved automatically (0: never).
    #[schema(nullable = false, minimum = 0, maximum = 365)]
    pub hold_days: Option<u16>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkRequest {
    pub campaign_id: String,
    pub affiliate_id: String,
}

/// Exactly one of `brand_id` or `affiliate_id`.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyRequest {
    #[schema(nullable = false)]
    pub brand_id: Option<String>,
    #[schema(nullable = false)]
    pub affiliate_id: Option<String>,
    #[schema(nullable = false)]
    pub rate_limit: Option<RateLimitSetting>,
}

/// `"default"` (the node's), `"unlimited"`, or a token bucket.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RateLimitSetting {
    Named(RateLimitName),
    Bucket {
        #[schema(minimum = 1, maximum = 1_000_000)]
        per_second: u32,
        /// Default: one second's worth.
        #[schema(minimum = 1, maximum = 10_000_000)]
        burst: Option<u32>,
    },
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitName {
    Default,
    Unlimited,
}

#[derive(Serialize, ToSchema)]
pub struct KeyRateLimitRequest {
    pub api_key: String,
    pub rate_limit: RateLimitSetting,
}

/// `{"data": {...}}` with what was created: ids, names, times, and for a key the key itself
/// (shown once).
#[derive(Serialize, ToSchema)]
pub struct Created {
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `GET /api/reports`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// As the listing's; required range limits apply (AFFILYNC_REPORT_MAX_DAYS).
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// IANA zone name for day, week and month buckets; default UTC.
    pub timezone: Option<String>,
    pub campaign_id: Option<String>,
    /// Brands only.
    pub affiliate_id: Option<String>,
    pub link_id: Option<String>,
    pub event_type: Option<EventType>,
    pub status: Option<Status>,
    pub currency: Option<String>,
    /// Comma list of hour, day, week, month, campaign, affiliate, link, event_type,
    /// status, currency; none: one total row.
    pub group_by: Option<String>,
    /// A metric or dimension, `-` in front for descending.
    pub sort: Option<String>,
    #[param(minimum = 1)]
    pub limit: Option<u32>,
    #[param(minimum = 1)]
    pub page: Option<u32>,
    /// `csv` for the rows as CSV (or send `Accept: text/csv`).
    pub format: Option<String>,
}

/// Report rows and their totals; money is per currency, as decimal strings.
#[derive(Serialize, ToSchema)]
pub struct ReportPage {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
}

/// `GET /api/conversions/export`: the listing's filters, and the format.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub campaign_id: Option<String>,
    pub affiliate_id: Option<String>,
    pub status: Option<Status>,
    /// csv (default) or ndjson (or send `Accept: application/x-ndjson`).
    pub format: Option<String>,
}

/// `POST /api/conversions/status` as JSON: decisions as items, or one decision for a list
/// of ids; at most 1,000.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum BulkStatusRequest {
    Items {
        items: Vec<BulkItem>,
    },
    Ids {
        conversion_ids: Vec<String>,
        status: Status,
        #[schema(nullable = false)]
        note: Option<String>,
    },
}

#[derive(Serialize, ToSchema)]
pub struct BulkItem {
    pub conversion_id: String,
    /// approved or rejected.
    pub status: Status,
    #[schema(nullable = false)]
    pub note: Option<String>,
}

/// One result per item, in input order (`updated`, `unchanged`, `not_found`,
/// `invalid_transition` with the current status), and the tally.
#[derive(Serialize, ToSchema)]
pub struct BulkStatusAnswer {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
}

/// Every status change of a conversion, oldest first: who, when, from, to, note.
#[derive(Serialize, ToSchema)]
pub struct HistoryPage {
    #[schema(value_type = Vec<Object>)]
    pub data: Vec<serde_json::Value>,
    #[schema(value_type = Object)]
    pub meta: serde_json::Value,
}
