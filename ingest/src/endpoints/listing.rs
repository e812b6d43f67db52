//! `GET /api/conversions` and `GET /api/conversions/{id}`: brands see their brand's
//! conversions, affiliates their own.

use actix_web::{HttpRequest, HttpResponse, web};
use attributor::store::ListCursor;
use serde_json::{Value, json};

use super::common::{Caller, visible_conversion};
use super::held;
use crate::error::ApiError;
use crate::openapi::responses::ReadErrors;
use crate::openapi::schemas::{ConversionEnvelope, ConversionPage};
use crate::request::ListParams;
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/api/conversions",
    tag = "reading",
    params(crate::openapi::schemas::ListParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A brand's conversions, or an affiliate's own; latest versions, newest first", body = ConversionPage),
        ReadErrors,
    )
)]
pub async fn list(
    Caller(principal): Caller,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_query(request.query_string())?;
    let scheduled = params.scheduled_approval()?;
    let cursor = params.cursor()?;
    let (mut filter, page) = params.into_filter(&principal)?;
    if let Some((from, until)) = scheduled {
        filter.scheduled = Some(held::scheduled_ranges(&state, &principal, from, until));
    }
    let now = state.clock.now();
    let listing = async {
        match &cursor {
            Some(cursor) => {
                state
                    .store
                    .list_conversions_after(&filter, page.per_page, cursor, now)
                    .await
            }
            None => state.store.list_conversions(&filter, page, now).await,
        }
    };
    let (conversions, total) =
        tokio::try_join!(listing, state.list_totals.count(&state.store, &filter),)?;
    // A full page may have a next one; a short page is the last.
    let next_cursor = conversions
        .last()
        .filter(|_| conversions.len() == page.per_page as usize)
        .map(|last| ListCursor::after(last).encode());
    let data: Vec<Value> = conversions
        .iter()
        .map(|conversion| held::conversion_value(&state, conversion))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "meta": {
            "page": page.page,
            "per_page": page.per_page,
            "total": total.value,
            "total_estimated": total.estimated,
            "next_cursor": next_cursor,
        },
    })))
}

#[utoipa::path(
    get,
    path = "/api/conversions/{id}",
    tag = "reading",
    params(("id" = String, Path, description = "A conversion id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The conversion's latest version", body = ConversionEnvelope),
        ReadErrors,
    )
)]
pub async fn get(
    Caller(principal): Caller,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversion = visible_conversion(&state, &principal, &id).await?;
    Ok(HttpResponse::Ok().json(json!({"data": held::conversion_value(&state, &conversion)})))
}
