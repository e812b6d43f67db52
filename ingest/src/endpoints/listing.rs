//! `GET /api/conversions` and `GET /api/conversions/{id}`: brands see their brand's
//! conversions, affiliates their own.

use actix_web::{HttpRequest, HttpResponse, web};
use attributor::Conversion;
use attributor::catalog::Principal;
use attributor::domain::ConversionId;
use serde_json::json;

use crate::auth::{self, KeyFrom};
use crate::error::ApiError;
use crate::request::ListParams;
use crate::state::AppState;
use crate::views::{self, ConversionView};

pub async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::principal(&request, &state, KeyFrom::Header).await?;
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

pub async fn get(
    request: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = auth::principal(&request, &state, KeyFrom::Header).await?;
    let conversion = visible_conversion(&state, &principal, &id).await?;
    Ok(HttpResponse::Ok().json(views::data(&conversion)))
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
