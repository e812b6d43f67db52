//! `POST /api/conversions/track` and `GET|POST /api/conversions/postback`: two ways to
//! report a conversion, one path from here on.

use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::domain::Source;

use super::common::{Authed, BrandCaller, answer_conversion};
use crate::auth::{self, KeyFrom};
use crate::error::ApiError;
use crate::openapi::responses::ReportErrors;
use crate::openapi::schemas::{ConversionEnvelope, PostbackParams, TrackRequest};
use crate::request::{ConversionInput, QueryPairs, drain_body, read_body, repair_postback_query};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/conversions/track",
    tag = "conversions",
    request_body = TrackRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Stored: journaled (fsync'd) on this node; ClickHouse gets it in the background", body = ConversionEnvelope),
        (status = 200, description = "The same order again with the same values: the stored conversion; nothing written", body = ConversionEnvelope,
            headers(("Idempotent-Replayed" = String, description = "true"))),
        ReportErrors,
    )
)]
pub async fn track(
    Authed {
        caller: BrandCaller(brand),
        body,
    }: Authed<BrandCaller>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversion =
        ConversionInput::from_json(&body)?.into_conversion(&brand, &state.signer, Source::Api)?;
    answer_conversion(&state, conversion).await
}

/// Parameters come from the query string; a POST may also send them as a form body.
#[utoipa::path(
    method(get, post),
    path = "/api/conversions/postback",
    tag = "conversions",
    params(PostbackParams),
    security(("api_key_query" = []), ("api_key" = [])),
    responses(
        (status = 201, description = "Stored: journaled (fsync'd) on this node; ClickHouse gets it in the background", body = ConversionEnvelope),
        (status = 200, description = "The same order again with the same values: the stored conversion; nothing written", body = ConversionEnvelope,
            headers(("Idempotent-Replayed" = String, description = "true"))),
        ReportErrors,
    )
)]
pub async fn postback(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = repair_postback_query(request.query_string());
    let parsed = QueryPairs::parse(query.as_bytes()).and_then(|pairs| {
        let key = KeyFrom::HeaderOrQuery(pairs.first("api_key"));
        let brand = auth::brand(&request, &state, key)?;
        Ok((brand, pairs))
    });
    let (brand, mut pairs) = match parsed {
        Ok(authed) => authed,
        Err(refused) => {
            // Read what was sent, so that the connection can carry the next postback.
            drain_body(&request, payload).await;
            return Err(refused);
        }
    };
    if request.method() == Method::POST && is_form(&request) {
        let body = read_body(&request, payload).await?;
        pairs.extend(QueryPairs::parse(&body)?);
    }
    let input = ConversionInput::from_pairs(&pairs);
    let conversion = input.into_conversion(&brand, &state.signer, Source::Postback)?;
    answer_conversion(&state, conversion).await
}

fn is_form(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
}
