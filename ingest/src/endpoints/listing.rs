//! `GET /api/conversions` and `GET /api/conversions/{id}`: brands see their brand's
//! conversions, affiliates their own.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::common::{Caller, visible_conversion};
use super::held;
use crate::error::ApiError;
use crate::request::ListParams;
use crate::state::AppState;

pub async fn list(
    Caller(principal): Caller,
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_query(request.query_string())?;
    let scheduled = params.scheduled_approval()?;
    let (mut filter, page) = params.into_filter(&principal)?;
    if let Some((from, until)) = scheduled {
        filter.scheduled = Some(held::scheduled_ranges(&state, &principal, from, until));
    }
    let (conversions, total) = tokio::try_join!(
        state
            .store
            .list_conversions(&filter, page, state.clock.now()),
        state.list_totals.count(&state.store, &filter),
    )?;
    let data: Vec<Value> = conversions
        .iter()
        .map(|conversion| held::conversion_value(&state, conversion))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "meta": {"page": page.page, "per_page": page.per_page, "total": total},
    })))
}

pub async fn get(
    Caller(principal): Caller,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let conversion = visible_conversion(&state, &principal, &id).await?;
    Ok(HttpResponse::Ok().json(json!({"data": held::conversion_value(&state, &conversion)})))
}
