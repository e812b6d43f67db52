//! `GET /c/{link_id}`: the tracking link. Answers at once with a redirect to the landing
//! page carrying a fresh click id (as `afk_cid` and as a cookie); the click row is
//! written in the background.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::domain::LinkId;
use attributor::store::ClickRow;

use crate::state::AppState;

pub async fn redirect(
    request: HttpRequest,
    link_id: web::Path<String>,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Ok(link_id) = LinkId::parse(&link_id) else {
        return page(
            HttpResponse::NotFound(),
            "This tracking link does not exist.",
        );
    };
    let resolved = match state.catalog.resolve_link(&link_id).await {
        Ok(Some(resolved)) => resolved,
        Ok(None) => {
            return page(
                HttpResponse::NotFound(),
                "This tracking link does not exist.",
            );
        }
        Err(error) => {
            tracing::error!(%error, "tracking link lookup failed");
            return page(
                HttpResponse::ServiceUnavailable(),
                "This link cannot be followed right now. Please try again in a moment.",
            );
        }
    };
    let campaign = &resolved.campaign;
    let click = state.signer.issue(&link_id, state.clock.now());

    let mut landing = campaign.landing_url.clone();
    landing
        .query_pairs_mut()
        .append_pair("afk_cid", click.as_str());

    let [sub1, sub2, sub3, sub4, sub5] = sub_ids(request.query_string());
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

/// The affiliate's sub-ids `sub1`..`sub5` from the link's query string, first value each.
fn sub_ids(query: &str) -> [String; 5] {
    let mut subs: [String; 5] = Default::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "sub1" => 0,
            "sub2" => 1,
            "sub3" => 2,
            "sub4" => 3,
            "sub5" => 4,
            _ => continue,
        };
        if subs[slot].is_empty() {
            subs[slot] = value.into_owned();
        }
    }
    subs
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
