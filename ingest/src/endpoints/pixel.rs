//! The browser path: `GET /pixel.js` and `GET|POST /api/conversions/pixel`.
//!
//! A pixel report has no API key: its brand is its click's brand (or, for cross-device
//! reports without a click, the page's `brand_id`). It goes through the same validation,
//! dedup and attribution as the API. The page never sees an error: every report is
//! answered 204 (or a 1x1 GIF), with the outcome in `X-Affilync-Outcome` and counted in
//! `affilync_pixel_reports_total`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use attributor::domain::{AttributionMethod, BrandId, Source};
use attributor::{PipelineError, ReportedClick};

use crate::auth;
use crate::dedup::Outcome;
use crate::error::ApiError;
use crate::openapi::schemas::{PixelParams, TrackRequest};
use crate::request::{PixelInput, read_body};
use crate::state::AppState;

/// A transparent 1x1 GIF for the image fallback.
const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Cached by browsers and CDNs for an hour; revalidated by ETag.
#[utoipa::path(
    get,
    path = "/pixel.js",
    tag = "browser",
    responses(
        (status = 200, description = "The pixel script, with this service's endpoint in it", content_type = "application/javascript", body = String,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Unchanged since the ETag sent in If-None-Match"),
    )
)]
pub async fn script(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let script = &state.pixel_script;
    let unchanged = request
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == script.etag()));
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, script.etag()))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    if unchanged {
        response.finish()
    } else {
        response
            .content_type("application/javascript; charset=utf-8")
            .body(script.body().to_owned())
    }
}

/// CORS preflight: any shop may report, with credentials (the tracking cookie).
pub async fn preflight(request: HttpRequest) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    cors(&request, &mut response);
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "Content-Type"))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish()
}

/// The page never sees an error: every report is answered 204 (or a GIF with
/// `format=gif`), the outcome in `X-Affilync-Outcome`.
#[utoipa::path(
    method(get, post),
    path = "/api/conversions/pixel",
    tag = "browser",
    params(PixelParams),
    request_body(content = TrackRequest, description = "POST (sendBeacon): the same fields as JSON, plus click_source and brand_id", content_type = "text/plain"),
    responses(
        (status = 204, description = "Received; see X-Affilync-Outcome",
            headers(("X-Affilync-Outcome" = String, description = "stored, replayed, conflict, no_click, forged_click, unknown_click, no_matching_email, invalid, unavailable"),
                    ("X-Affilync-Field" = String, description = "For invalid: the field at fault"))),
        (status = 200, description = "With format=gif: a transparent 1x1 GIF", content_type = "image/gif", body = Vec<u8>,
            headers(("X-Affilync-Outcome" = String))),
        (status = 429, description = "Too many reports from this address",
            headers(("Retry-After" = u64), ("X-Affilync-Outcome" = String, description = "rate_limited"))),
    )
)]
pub async fn report(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(ApiError::RateLimited {
        retry_after_seconds,
        ..
    }) = auth::address_allowed(&request, &state)
    {
        let wants_image = PixelInput::query_wants_image(request.query_string());
        let mut response = answer(&request, &state, wants_image, "rate_limited".into());
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        return response;
    }
    let input = if request.method() == Method::POST {
        match read_body(&request, payload).await {
            Ok(body) => PixelInput::from_body(&body),
            Err(error) => Err(error),
        }
    } else {
        PixelInput::from_query(request.query_string())
    };
    let (wants_image, outcome) = match input {
        Ok(input) => (input.wants_image, store(&request, &state, input).await),
        Err(error) => (
            PixelInput::query_wants_image(request.query_string()),
            Reported::invalid(error),
        ),
    };
    answer(&request, &state, wants_image, outcome)
}

/// What became of a report: its outcome label and, for an invalid one, the field to blame.
struct Reported {
    outcome: &'static str,
    field: Option<String>,
}

impl From<&'static str> for Reported {
    fn from(outcome: &'static str) -> Self {
        Reported {
            outcome,
            field: None,
        }
    }
}

impl Reported {
    fn invalid(error: ApiError) -> Self {
        Reported {
            outcome: "invalid",
            field: match error {
                ApiError::Invalid { field, .. } => Some(field),
                _ => None,
            },
        }
    }
}

/// Takes the report through the common path; returns its outcome.
async fn store(request: &HttpRequest, state: &AppState, mut input: PixelInput) -> Reported {
    // The page's own evidence first, then the tracking host's cookie sent by the browser.
    let reported = match input.conversion.click_id.take().filter(|id| !id.is_empty()) {
        Some(id) => {
            let method = match input.click_source.as_deref() {
                Some("first_party_cookie") => AttributionMethod::Cookie,
                _ => AttributionMethod::ClickId,
            };
            Some((id, method))
        }
        None => request
            .cookie("afk_cid")
            .map(|cookie| (cookie.value().to_owned(), AttributionMethod::Cookie)),
    };
    let (brand, click) = match reported {
        Some((text, method)) => {
            let Ok(id) = state.signer.verify(&text) else {
                return "forged_click".into();
            };
            match state.catalog.resolve_link(id.link()) {
                Some(resolved) => (
                    resolved.link.brand.clone(),
                    Some(ReportedClick { id, method }),
                ),
                None => return "unknown_click".into(),
            }
        }
        None => {
            let brand = input
                .brand_id
                .as_deref()
                .and_then(|id| BrandId::parse(id).ok());
            match brand {
                Some(brand)
                    if input.conversion.customer_email.is_some()
                        && state.catalog.brand(&brand).is_some() =>
                {
                    (brand, None)
                }
                _ => return "no_click".into(),
            }
        }
    };
    let conversion = match input
        .conversion
        .into_attributable(&brand, click, Source::Pixel)
    {
        Ok(conversion) => conversion,
        Err(error) => return Reported::invalid(error),
    };
    let outcome = match super::common::submit_conversion(state, conversion).await {
        Ok(Outcome::Created(_)) => "stored",
        Ok(Outcome::Replayed(_)) => "replayed",
        Ok(Outcome::Conflict(_)) => "conflict",
        Err(PipelineError::NoMatchingTouch) => "no_matching_email",
        Err(PipelineError::UnknownClick | PipelineError::ClickOfAnotherBrand) => "unknown_click",
        Err(_) => "unavailable",
    };
    outcome.into()
}

fn answer(
    request: &HttpRequest,
    state: &AppState,
    wants_image: bool,
    reported: Reported,
) -> HttpResponse {
    state
        .pixel_metrics
        .reports_total
        .with_label_values(&[reported.outcome])
        .inc();
    let mut response = HttpResponseBuilder::new(if wants_image {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    });
    cors(request, &mut response);
    response
        .insert_header(("X-Affilync-Outcome", reported.outcome))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    // The page never reads it; whoever debugs a shop's pixel with curl does.
    if let Some(field) = reported.field
        && let Ok(value) = HeaderValue::from_str(&field)
    {
        response.insert_header(("X-Affilync-Field", value));
    }
    if wants_image {
        response.content_type("image/gif").body(GIF)
    } else {
        response.finish()
    }
}

/// Echoes the shop's origin: credentialed requests may not use `*`.
fn cors(request: &HttpRequest, response: &mut HttpResponseBuilder) {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    let credentials = origin != "*";
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
        .insert_header((header::VARY, "Origin"));
    if credentials {
        response.insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"));
    }
}
