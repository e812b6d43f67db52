//! `/api/admin/*`: the operator creates brands, affiliates, campaigns, links and keys.

use actix_web::{HttpResponse, web};
use attributor::catalog::{Campaign, NewCampaign, Principal, RateLimit};
use attributor::commission::CommissionRules;
use attributor::domain::{AffiliateId, BrandId, CampaignId, Currency};
use attributor::hold::MAX_HOLD_DAYS;
use serde_json::{Map, Value, json};
use url::Url;

use super::common::{Authed, Operator};
use super::key_limits::{parse_rate_limit, rate_limit_json};
use crate::error::ApiError;
use crate::openapi::responses::AdminErrors;
use crate::openapi::schemas::{ApiKeyRequest, CampaignRequest, Created, LinkRequest, NameRequest};
use crate::state::AppState;
use crate::views::timestamp;

const MAX_NAME_BYTES: usize = 200;

#[utoipa::path(
    post,
    path = "/api/admin/brands",
    tag = "admin",
    request_body = NameRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "A brand", body = Created),
        AdminErrors,
    )
)]
pub async fn create_brand(
    Authed { body, .. }: Authed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&body)?;
    let name = name(&body)?;
    let brand = state.catalog.create_brand(name).await?;
    created(
        json!({"brand_id": brand.id, "name": brand.name, "created_at": timestamp(brand.created_at)}),
    )
}

#[utoipa::path(
    post,
    path = "/api/admin/affiliates",
    tag = "admin",
    request_body = NameRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "An affiliate", body = Created),
        AdminErrors,
    )
)]
pub async fn create_affiliate(
    Authed { body, .. }: Authed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&body)?;
    let name = name(&body)?;
    let affiliate = state.catalog.create_affiliate(name).await?;
    created(json!({
        "affiliate_id": affiliate.id,
        "name": affiliate.name,
        "created_at": timestamp(affiliate.created_at),
    }))
}

#[utoipa::path(
    post,
    path = "/api/admin/campaigns",
    tag = "admin",
    request_body = CampaignRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "A campaign of a brand", body = Created),
        AdminErrors,
    )
)]
pub async fn create_campaign(
    Authed { body, .. }: Authed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&body)?;
    let brand = known_brand(&state, &required_text(&body, "brand_id")?)?;
    let name = name(&body)?;
    let landing_url = landing_url(&required_text(&body, "landing_url")?)?;
    let currency = match text(&body, "currency")? {
        Some(code) => code
            .parse::<Currency>()
            .map_err(|e| ApiError::invalid("currency", e))?,
        None => Currency::USD,
    };
    let cookie_window_days = match body.get("cookie_window_days") {
        None | Some(Value::Null) => Campaign::DEFAULT_COOKIE_WINDOW_DAYS,
        Some(value) => value
            .as_u64()
            .and_then(|days| u16::try_from(days).ok())
            .filter(|days| (1..=Campaign::MAX_COOKIE_WINDOW_DAYS).contains(days))
            .ok_or_else(|| {
                ApiError::invalid(
                    "cookie_window_days",
                    "must be a whole number of days from 1 to 365",
                )
            })?,
    };
    let hold_days = match body.get("hold_days") {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .and_then(|days| u16::try_from(days).ok())
            .filter(|days| *days <= MAX_HOLD_DAYS)
            .ok_or_else(|| {
                ApiError::invalid("hold_days", "must be a whole number of days from 0 to 365")
            })?,
    };
    let commission = match body.get("commission") {
        None | Some(Value::Null) => CommissionRules::default(),
        Some(rules) => CommissionRules::from_json(rules, currency)
            .map_err(|e| ApiError::invalid(e.field, e.message))?,
    };
    let campaign = state
        .catalog
        .create_campaign(NewCampaign {
            brand,
            name,
            landing_url,
            currency,
            cookie_window_days,
            commission,
        })
        .await?;
    state
        .holds
        .set(
            &campaign.id,
            &campaign.brand,
            hold_days,
            campaign.created_at,
        )
        .await?;
    created(json!({
        "campaign_id": campaign.id,
        "brand_id": campaign.brand,
        "name": campaign.name,
        "landing_url": campaign.landing_url.as_str(),
        "currency": campaign.currency.code(),
        "cookie_window_days": campaign.cookie_window_days,
        "hold_days": hold_days,
        "commission": campaign.commission.to_json(),
        "created_at": timestamp(campaign.created_at),
    }))
}

#[utoipa::path(
    post,
    path = "/api/admin/links",
    tag = "admin",
    request_body = LinkRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "A tracking link of an affiliate for a campaign; `url` is the link", body = Created),
        AdminErrors,
    )
)]
pub async fn create_link(
    Authed { body, .. }: Authed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&body)?;
    let campaign_id = CampaignId::parse(&required_text(&body, "campaign_id")?)
        .map_err(|e| ApiError::invalid("campaign_id", e))?;
    let affiliate = required_text(&body, "affiliate_id")?;
    let campaign = state
        .catalog
        .campaign(&campaign_id)
        .ok_or_else(|| ApiError::invalid("campaign_id", "is not a campaign of this network"))?;
    let affiliate = known_affiliate(&state, &affiliate)?;
    let link = state.catalog.create_link(&campaign, affiliate).await?;
    let url = state
        .public_url
        .join(&format!("c/{}", link.id))
        .map_err(|e| ApiError::Internal(format!("cannot build the link URL: {e}")))?;
    created(json!({
        "link_id": link.id,
        "campaign_id": link.campaign,
        "affiliate_id": link.affiliate,
        "url": url.as_str(),
        "created_at": timestamp(link.created_at),
    }))
}

#[utoipa::path(
    post,
    path = "/api/admin/api-keys",
    tag = "admin",
    request_body = ApiKeyRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "A key for a brand or an affiliate; `api_key` is shown only here", body = Created),
        AdminErrors,
    )
)]
pub async fn create_api_key(
    Authed { body, .. }: Authed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = json_object(&body)?;
    let brand = text(&body, "brand_id")?;
    let affiliate = text(&body, "affiliate_id")?;
    let (principal, owner) = match (brand, affiliate) {
        (Some(brand), None) => {
            let brand = known_brand(&state, &brand)?;
            let owner = json!({"brand_id": brand});
            (Principal::Brand(brand), owner)
        }
        (None, Some(affiliate)) => {
            let affiliate = known_affiliate(&state, &affiliate)?;
            let owner = json!({"affiliate_id": affiliate});
            (Principal::Affiliate(affiliate), owner)
        }
        _ => {
            return Err(ApiError::invalid(
                "brand_id",
                "give exactly one of brand_id or affiliate_id",
            ));
        }
    };
    let limit = parse_rate_limit(body.get("rate_limit"))?;
    let key = state.catalog.create_api_key(principal).await?;
    if limit != RateLimit::Default {
        state.catalog.set_rate_limit(&key, limit).await?;
    }
    let mut data = owner;
    data["api_key"] = Value::String(key);
    data["rate_limit"] = rate_limit_json(limit);
    created(data)
}

/// Every admin body is one JSON object.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        )),
        Err(error) => Err(ApiError::BadRequest(format!(
            "the body is not valid JSON: {error}"
        ))),
    }
}

/// A brand id of this network, or 422 naming brand_id.
fn known_brand(state: &AppState, text: &str) -> Result<BrandId, ApiError> {
    let brand = BrandId::parse(text).map_err(|e| ApiError::invalid("brand_id", e))?;
    match state.catalog.brand(&brand) {
        Some(_) => Ok(brand),
        None => Err(ApiError::invalid(
            "brand_id",
            "is not a brand of this network",
        )),
    }
}

/// An affiliate id of this network, or 422 naming affiliate_id.
fn known_affiliate(state: &AppState, text: &str) -> Result<AffiliateId, ApiError> {
    let affiliate = AffiliateId::parse(text).map_err(|e| ApiError::invalid("affiliate_id", e))?;
    match state.catalog.affiliate(&affiliate) {
        Some(_) => Ok(affiliate),
        None => Err(ApiError::invalid(
            "affiliate_id",
            "is not an affiliate of this network",
        )),
    }
}

fn created(data: Value) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Created().json(json!({ "data": data })))
}

fn text(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.trim().to_owned())),
        Some(_) => Err(ApiError::invalid(field, "must be a string")),
    }
}

fn required_text(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    text(body, field)?.ok_or_else(|| ApiError::required(field))
}

fn name(body: &Map<String, Value>) -> Result<String, ApiError> {
    let name = required_text(body, "name")?;
    if name.len() > MAX_NAME_BYTES {
        return Err(ApiError::invalid(
            "name",
            format!("must be at most {MAX_NAME_BYTES} bytes"),
        ));
    }
    Ok(name)
}

fn landing_url(text: &str) -> Result<Url, ApiError> {
    let url = Url::parse(text)
        .map_err(|_| ApiError::invalid("landing_url", "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::invalid(
            "landing_url",
            "must be an absolute http(s) URL",
        ));
    }
    Ok(url)
}
