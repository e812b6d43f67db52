//! `GET /c/{link_id}`: the tracking link. Answers at once with a redirect to the landing
//! page carrying a fresh click id (as `afk_cid` and as a cookie); the click row is
//! written in the background.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::domain::LinkId;
use attributor::store::ClickRow;

use crate::auth;
use crate::error::ApiError;
use crate::request::QueryPairs;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/c/{link_id}",
    tag = "browser",
    params(
        ("link_id" = String, Path, description = "A tracking link id"),
        ("sub1" = Option<String>, Query, description = "The affiliate's sub-ids, sub1 to sub5, kept with the click"),
    ),
    responses(
        (status = 302, description = "To the campaign's landing page with afk_cid; the click id also as a cookie",
            headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = "A malformed sub-id (an HTML page)", content_type = "text/html", body = String),
        (status = 404, description = "No such link (an HTML page)", content_type = "text/html", body = String),
        (status = 429, description = "Too many clicks from this address (an HTML page)", content_type = "text/html", body = String,
            headers(("Retry-After" = u64))),
    )
)]
pub async fn redirect(
    request: HttpRequest,
    link_id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    if let Err(ApiError::RateLimited {
        retry_after_seconds,
        ..
    }) = auth::address_allowed(&request, &state)
    {
        let mut response = HttpResponse::TooManyRequests();
        response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
        return page(
            response,
            &format!("Too many clicks from your address; try again in {retry_after_seconds} s."),
        );
    }
    let Ok(link_id) = LinkId::parse(&link_id) else {
        return page(
            HttpResponse::NotFound(),
            "This tracking link does not exist.",
        );
    };
    let Some(resolved) = state.catalog.resolve_link(&link_id) else {
        return page(
            HttpResponse::NotFound(),
            "This tracking link does not exist.",
        );
    };
    let campaign = &resolved.campaign;
    let click = state.signer.issue(&link_id, state.clock.now());

    let mut landing = campaign.landing_url.clone();
    landing
        .query_pairs_mut()
        .append_pair("afk_cid", click.as_str());

    let [sub1, sub2, sub3, sub4, sub5] = match sub_ids(request.query_string()) {
        Ok(subs) => subs,
        Err(error) => {
            return page(
                HttpResponse::BadRequest(),
                &format!("This tracking link is malformed: {error}."),
            );
        }
    };
    let header_text = |name: header::HeaderName| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    state.clicks.record(ClickRow {
        click_id: click.as_str().to_owned(),
        clicked_at: click.clicked_at(),
        link_id: link_id.to_string(),
        campaign_id: campaign.id.to_string(),
        affiliate_id: resolved.link.affiliate.to_string(),
        brand_id: campaign.brand.to_string(),
        ip: request
            .peer_addr()
            .map(|address| address.ip().to_string())
            .unwrap_or_default(),
        forwarded_for: header_text(header::HeaderName::from_static("x-forwarded-for")),
        user_agent: header_text(header::USER_AGENT),
        referer: header_text(header::REFERER),
        sub1,
        sub2,
        sub3,
        sub4,
        sub5,
    });

    let cookie = Cookie::build("afk_cid", click.as_str().to_owned())
        .path("/")
        .max_age(campaign.cookie_window())
        .same_site(SameSite::None)
        .secure(true)
        .http_only(true)
        .finish();
    HttpResponse::Found()
        .insert_header((header::LOCATION, landing.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(cookie)
        .finish()
}

const SUB_IDS: [&str; 5] = ["sub1", "sub2", "sub3", "sub4", "sub5"];

/// The affiliate's sub-ids `sub1`..`sub5` from the link's query string, first value each;
/// other parameters are not read.
fn sub_ids(query: &str) -> Result<[String; 5], ApiError> {
    let pairs = QueryPairs::parse_only(query.as_bytes(), &SUB_IDS)?;
    Ok(SUB_IDS.map(|name| pairs.first(name).unwrap_or_default().to_owned()))
}

/// People follow tracking links; they get a page, not JSON.
fn page(mut response: actix_web::HttpResponseBuilder, message: &str) -> HttpResponse {
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Affilync</title></head>\
             <body><p>{message}</p></body></html>"
        ))
}
