//! What several handlers share: the preamble as extractors (who is calling, then the body),
//! and the one path a reported conversion takes to its answer.
//!
//! Extractors run in the order of a handler's arguments, and the first refusal is the
//! answer: a handler that takes the caller before the body answers a missing key with 401
//! whatever the body holds.

use std::future::{Ready, ready};
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::ContentType;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use attributor::catalog::Principal;
use attributor::domain::{BrandId, ConversionId};
use attributor::{Conversion, NewConversion, PipelineError};
use futures_util::future::LocalBoxFuture;
use serde_json::json;

use crate::auth::{self, KeyFrom};
use crate::dedup::{Outcome, Remembered};
use crate::endpoints::held;
use crate::error::ApiError;
use crate::request::{MAX_BODY_BYTES, drain_body, read_body_within, require_json};
use crate::state::AppState;

/// The brand whose key is in `Authorization: Bearer`; an affiliate key is a 403.
pub struct BrandCaller(pub BrandId);

/// The brand or affiliate whose key is in `Authorization: Bearer`.
pub struct Caller(pub Principal);

/// The operator, holding the admin token.
pub struct Operator;

/// A caller (one of the extractors above) and the JSON body they sent (or one without a
/// content type), read whole within `LIMIT` bytes. Taken together because the caller is
/// checked first but the body must still be read when the caller is refused: a connection
/// whose request body is left unread cannot carry the next request, and a client with a
/// bad key would lose its keep-alive connection on every call.
pub struct Authed<C, const LIMIT: usize = MAX_BODY_BYTES> {
    pub caller: C,
    pub body: Bytes,
}

impl FromRequest for BrandCaller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth::brand(request, state(request), KeyFrom::Header).map(Self))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth::principal(request, state(request), KeyFrom::Header).map(Self))
    }
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(auth::admin(request, state(request)).map(|()| Self))
    }
}

impl<C, const LIMIT: usize> FromRequest for Authed<C, LIMIT>
where
    C: FromRequest<Error = ApiError, Future = Ready<Result<C, ApiError>>> + 'static,
{
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let caller = C::from_request(request, payload).into_inner();
        let request = request.clone();
        let payload = payload.take();
        Box::pin(async move {
            match caller {
                Ok(caller) => {
                    require_json(&request)?;
                    let body = read_body_within(&request, payload, LIMIT).await?;
                    Ok(Self { caller, body })
                }
                Err(refused) => {
                    drain_body(&request, payload).await;
                    Err(refused)
                }
            }
        })
    }
}

/// The service's state; every app this crate builds registers it.
fn state(request: &HttpRequest) -> &AppState {
    request
        .app_data::<web::Data<AppState>>()
        .expect("the server registers AppState")
}

/// Sends the conversion through the dedup front and answers 201, 200 (replay) or 409.
pub async fn answer_conversion(
    state: &AppState,
    conversion: NewConversion,
) -> Result<HttpResponse, ApiError> {
    let outcome = match state.dedup.cached(&conversion).await {
        Some(outcome) => outcome,
        None => submit_conversion(state, conversion).await?,
    };
    let answers = &state.metrics.conversion_answers_total;
    match outcome {
        Outcome::Created(remembered) => {
            answers.with_label_values(&["created"]).inc();
            Ok(HttpResponse::Created()
                .content_type(ContentType::json())
                .body(answer_body(state, &remembered)))
        }
        Outcome::Replayed(remembered) => {
            answers.with_label_values(&["replayed"]).inc();
            Ok(HttpResponse::Ok()
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type(ContentType::json())
                .body(answer_body(state, &remembered)))
        }
        Outcome::Conflict(remembered) => {
            answers.with_label_values(&["conflict"]).inc();
            let conversion = &remembered.conversion;
            Err(ApiError::Conflict {
                code: "order_id_conflict",
                message: format!(
                    "order_id {:?} was already reported with a different click_id, amount, currency or event_type",
                    conversion.order_id.as_str()
                ),
                data: Some(held::conversion_value(state, conversion)),
            })
        }
    }
}

/// `{"data": <conversion>}` as every read shows it: the bytes the dedup front serialized
/// once, unless the conversion's campaign holds conversions, when the answer also carries
/// `scheduled_approval_at` (the dedup front knows nothing of holds).
fn answer_body(state: &AppState, remembered: &Remembered) -> Bytes {
    if state.holds.get(&remembered.conversion.campaign).is_none() {
        return remembered.body.clone();
    }
    let data = json!({"data": held::conversion_value(state, &remembered.conversion)});
    serde_json::to_vec(&data)
        .expect("conversion views serialize to JSON")
        .into()
}

/// Through the dedup front to the pipeline, as its own task so that a client hanging up
/// cannot cancel it half-way: once queued, the conversion is stored, and the dedup entry
/// must learn so.
pub async fn submit_conversion(
    state: &AppState,
    conversion: NewConversion,
) -> Result<Outcome, PipelineError> {
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

/// The conversion if it exists and the caller may see it; another tenant's conversion is
/// indistinguishable from one that does not exist.
pub async fn visible_conversion(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<Conversion, ApiError> {
    let not_found = || ApiError::NotFound(format!("there is no conversion {id}"));
    let id = ConversionId::parse(id).map_err(|_| not_found())?;
    let conversion = state.dedup.find(&id).await?.ok_or_else(not_found)?;
    let visible = match principal {
        Principal::Brand(brand) => &conversion.brand == brand,
        Principal::Affiliate(affiliate) => &conversion.affiliate == affiliate,
    };
    if visible {
        Ok(conversion)
    } else {
        Err(not_found())
    }
}
