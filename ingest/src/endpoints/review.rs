//! `PATCH /api/conversions/{id}`: a brand approves or rejects. A change is a new version
//! of the conversion, journaled like a new one; the shipper writes it as a new version of
//! the conversion row and of its commission row.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use attributor::catalog::Principal;
use attributor::store::StatusChangeRow;

use super::actor::KeyActor;
use super::common::{BrandCaller, JsonBody, visible_conversion};
use crate::error::ApiError;
use crate::request::StatusChange;
use crate::state::AppState;
use crate::views;

pub async fn patch(
    BrandCaller(brand): BrandCaller,
    KeyActor(actor): KeyActor,
    id: web::Path<String>,
    JsonBody(body): JsonBody,
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
