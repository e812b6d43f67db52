//! `GET /api/conversions` and `GET /api/conversions/{id}`: brands see their brand's
//! conversions, affiliates their own.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::common::{Caller, visible_conversion};
use crate::error::ApiError;
use crate::openapi::responses::ReadErrors;
use crate::openapi::schemas::{ConversionEnvelope, ConversionPage};
use crate::request::ListParams;
use crate::state::AppState;
use crate::views::{self, ConversionView};

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
    let (filter, page) = ListParams::from_query(request.query_string())?.into_filter(&principal)?;
    let (conversions, total) = tokio::try_join!(
        state
            .store
            .list_conversions(&filter, page, state.clock.now()),
        state.list_totals.count(&state.store, &filter),
    )?;
    let data: Vec<ConversionView> = conversions.iter().map(ConversionView::from).collect();
    Ok(HttpResponse::Ok().json(json!({
        "data": data,
        "meta": {"page": page.page, "per_page": page.per_page, "total": total},
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
    Ok(HttpResponse::Ok().json(views::data(&conversion)))
}
