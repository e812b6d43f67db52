//! `POST /api/conversions/track` and `GET|POST /api/conversions/postback`: two ways to
//! report a conversion, one path from here on.

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};
use attributor::domain::Source;
use attributor::{NewConversion, PipelineError};

use crate::auth::{self, KeyFrom};
use crate::dedup::Outcome;
use crate::error::ApiError;
use crate::request::{ConversionInput, QueryPairs, read_body, repair_postback_query, require_json};
use crate::state::AppState;
use crate::views;

pub async fn track(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let brand = auth::brand(&request, &state, KeyFrom::Header).await?;
    require_json(&request)?;
    let body = read_body(&request, payload).await?;
    let conversion =
        ConversionInput::from_json(&body)?.into_conversion(&brand, &state.signer, Source::Api)?;
    answer(&state, conversion).await
}

/// Parameters come from the query string; a POST may also send them as a form body.
pub async fn postback(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let brand = auth::brand(&request, &state, KeyFrom::HeaderOrQuery).await?;
    let query = repair_postback_query(request.query_string());
    let mut pairs = QueryPairs::parse(query.as_bytes())?;
    if request.method() == Method::POST && is_form(&request) {
        let body = read_body(&request, payload).await?;
        pairs.extend(QueryPairs::parse(&body)?);
    }
    let input = ConversionInput::from_pairs(&pairs);
    let conversion = input.into_conversion(&brand, &state.signer, Source::Postback)?;
    answer(&state, conversion).await
}

/// Sends the conversion through the dedup front and answers 201, 200 (replay) or 409.
pub async fn answer(state: &AppState, conversion: NewConversion) -> Result<HttpResponse, ApiError> {
    let outcome = match state.dedup.cached(&conversion).await {
        Some(outcome) => outcome,
        None => submit(state, conversion).await?,
    };
    let answers = &state.metrics.conversion_answers_total;
    match outcome {
        Outcome::Created(remembered) => {
            answers.with_label_values(&["created"]).inc();
            Ok(HttpResponse::Created()
                .content_type(ContentType::json())
                .body(remembered.body.clone()))
        }
        Outcome::Replayed(remembered) => {
            answers.with_label_values(&["replayed"]).inc();
            Ok(HttpResponse::Ok()
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type(ContentType::json())
                .body(remembered.body.clone()))
        }
        Outcome::Conflict(remembered) => {
            answers.with_label_values(&["conflict"]).inc();
            let conversion = &remembered.conversion;
            Err(ApiError::Conflict {
                code: "order_id_conflict",
                message: format!(
                    "order_id {:?} was already reported with a different click_id, amount, currency or event_type",
                    conversion.order_id
                ),
                data: Some(views::value(conversion)),
            })
        }
    }
}

/// Through the dedup front to the pipeline, as its own task so that a client hanging up
/// cannot cancel it half-way: once queued, the conversion is stored, and the dedup entry
/// must learn so.
pub async fn submit(state: &AppState, conversion: NewConversion) -> Result<Outcome, PipelineError> {
    let dedup = Arc::clone(&state.dedup);
    let in_flight = state.metrics.conversions_in_flight.clone();
    in_flight.inc();
    let outcome = actix_web::rt::spawn(async move { dedup.submit(conversion).await }).await;
    in_flight.dec();
    outcome.unwrap_or_else(|_| {
        Err(PipelineError::StoreRefused(
            "the conversion task stopped".into(),
        ))
    })
}

fn is_form(request: &HttpRequest) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"))
}
