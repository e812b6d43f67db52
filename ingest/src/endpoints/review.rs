//! `PATCH /api/conversions/{id}`: a brand approves or rejects. A change is a new version
//! of the conversion, journaled like a new one; the shipper writes it as a new version of
//! the conversion row and of its commission row.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use attributor::catalog::Principal;
use attributor::store::StatusChangeRow;

use super::actor::KeyActor;
use super::common::{Authed, BrandCaller, visible_conversion};
use crate::error::ApiError;
use crate::openapi::responses::ChangeErrors;
use crate::openapi::schemas::{ConversionEnvelope, StatusChangeRequest};
use crate::request::StatusChange;
use crate::state::AppState;
use crate::views;

#[utoipa::path(
    patch,
    path = "/api/conversions/{id}",
    tag = "reading",
    params(("id" = String, Path, description = "A conversion id")),
    request_body = StatusChangeRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The conversion with its new status (or unchanged, when it already had it); journaled before the answer", body = ConversionEnvelope),
        ChangeErrors,
    )
)]
pub async fn patch(
    id: web::Path<String>,
    Authed {
        caller: BrandCaller(brand),
        body,
    }: Authed<BrandCaller>,
    // After the caller: a bad key is refused (its body read) by the extractor above.
    KeyActor(actor): KeyActor,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let change = StatusChange::from_json(&body)?;
    let current = visible_conversion(&state, &Principal::Brand(brand), &id).await?;

    if current.status == change.status {
        return Ok(HttpResponse::Ok().json(views::data(&current)));
    }
    if !current.status.may_become(change.status) {
        return Err(ApiError::Conflict {
            code: "invalid_status_transition",
            message: format!(
                "a {} conversion cannot become {}",
                current.status, change.status
            ),
            data: Some(views::value(&current)),
        });
    }
    let next = current.with_status(change.status, &change.note, state.clock.now());
    // Journaled after every version this node journaled before; the shipper writes its
    // conversion and commission rows together.
    let change = StatusChangeRow::of(&next, current.status, &actor);
    let next = state.pipeline.record_change(next, change).await?;
    state.dedup.refresh(Arc::clone(&next)).await;
    state.list_totals.forget_brand(&next.brand);
    Ok(HttpResponse::Ok().json(views::data(&next)))
}
