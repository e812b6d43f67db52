//! `GET /api/conversions/{id}/history`: every status change of a conversion, oldest
//! first, for whoever may see the conversion (as `GET /api/conversions/{id}`). The rows
//! are read from ClickHouse, so like listings they lag this node's journal by the
//! shipping delay (seconds); the conversion itself, in `meta`, is current.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;

use super::common::{Caller, visible_conversion};
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::timestamp;

#[derive(Serialize)]
struct ChangeView {
    changed_at: String,
    from: String,
    to: String,
    actor: String,
    note: String,
    version: u64,
}

#[utoipa::path(
    get,
    path = "/api/conversions/{id}/history",
    tag = "reading",
    params(("id" = String, Path, description = "A conversion id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Every status change, oldest first (lags the journal by the shipping delay)", body = crate::openapi::schemas::HistoryPage),
        crate::openapi::responses::ReadErrors,
    )
)]
pub async fn history(
    Caller(principal): Caller,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversion = visible_conversion(&state, &principal, &id).await?;
    let rows = state.store.status_history(&conversion.id).await?;
    let data: Vec<ChangeView> = rows
        .into_iter()
        .map(|row| ChangeView {
            changed_at: timestamp(row.changed_at),
            from: row.from_status,
            to: row.to_status,
            actor: row.actor,
            note: row.note,
            version: row.version,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "meta": {"conversion_id": conversion.id.as_str(), "status": conversion.status.as_str()},
    })))
}
