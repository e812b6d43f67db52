//! `PUT /api/admin/api-keys/rate-limit`, and the `rate_limit` field of a new key: the
//! operator gives one key its own limit (a partner's high-volume postback server), no
//! limit, or the node's default again.

use actix_web::{HttpResponse, web};
use attributor::catalog::RateLimit;
use serde_json::{Map, Value, json};

use super::common::{Authed, Operator};
use crate::error::ApiError;
use crate::openapi::responses::AdminErrors;
use crate::openapi::schemas::{Created, KeyRateLimitRequest};
use crate::state::AppState;

/// Highest settable rate and burst: far above what one node serves, low enough that the
/// bucket's arithmetic stays exact.
const MAX_PER_SECOND: u64 = 1_000_000;
const MAX_BURST: u64 = 10_000_000;

#[utoipa::path(
    put,
    path = "/api/admin/api-keys/rate-limit",
    tag = "admin",
    request_body = KeyRateLimitRequest,
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The key's new limit; every node applies it from its next catalog refresh", body = Created),
        AdminErrors,
    )
)]
pub async fn set_key_rate_limit(
    Authed { body, .. }: Authed<Operator>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(Value::Object(object)) => object,
        _ => {
            return Err(ApiError::BadRequest(
                "the body must be a JSON object".into(),
            ));
        }
    };
    let key = body
        .get("api_key")
        .and_then(Value::as_str)
        .filter(|key| !key.is_empty())
        .ok_or_else(|| ApiError::required("api_key"))?;
    let limit = parse_rate_limit(body.get("rate_limit"))?;
    let set = state
        .catalog
        .set_rate_limit(key, limit)
        .await?
        .ok_or_else(|| ApiError::invalid("api_key", "is not a key of this network"))?;
    let prefix = state
        .catalog
        .key(key)
        .map(|found| found.prefix.clone())
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(json!({
        "data": {"key_prefix": prefix, "rate_limit": rate_limit_json(set.limit)},
    })))
}

/// `null` or `"default"`: the node's default; `"unlimited"`; or
/// `{"per_second": n, "burst": m}` (burst defaults to one second's worth).
pub fn parse_rate_limit(value: Option<&Value>) -> Result<RateLimit, ApiError> {
    let field = "rate_limit";
    match value {
        None | Some(Value::Null) => Ok(RateLimit::Default),
        Some(Value::String(text)) if text == "default" => Ok(RateLimit::Default),
        Some(Value::String(text)) if text == "unlimited" => Ok(RateLimit::Unlimited),
        Some(Value::Object(terms)) => {
            let number = |name: &str, max: u64, fallback: Option<u64>| {
                let field = format!("{field}.{name}");
                match terms.get(name) {
                    None | Some(Value::Null) => fallback.ok_or_else(|| ApiError::required(&field)),
                    Some(value) => {
                        value
                            .as_u64()
                            .filter(|n| (1..=max).contains(n))
                            .ok_or_else(|| {
                                ApiError::invalid(
                                    field,
                                    format!("must be a whole number from 1 to {max}"),
                                )
                            })
                    }
                }
            };
            let per_second = number("per_second", MAX_PER_SECOND, None)?;
            let burst = number("burst", MAX_BURST, Some(per_second))?;
            Ok(RateLimit::Limited {
                per_second: u32::try_from(per_second).expect("bounded above"),
                burst: u32::try_from(burst).expect("bounded above"),
            })
        }
        Some(_) => Err(ApiError::invalid(
            field,
            "must be \"default\", \"unlimited\" or {\"per_second\": n, \"burst\": m}",
        )),
    }
}

pub fn rate_limit_json(limit: RateLimit) -> Value {
    match limit {
        RateLimit::Default => json!("default"),
        RateLimit::Unlimited => json!("unlimited"),
        RateLimit::Limited { per_second, burst } => {
            json!({"per_second": per_second, "burst": burst})
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rate_limits_parse_and_name_the_field() {
        assert_eq!(parse_rate_limit(None).unwrap(), RateLimit::Default);
        assert_eq!(
            parse_rate_limit(Some(&json!("unlimited"))).unwrap(),
            RateLimit::Unlimited
        );
        assert_eq!(
            parse_rate_limit(Some(&json!({"per_second": 5}))).unwrap(),
            RateLimit::Limited {
                per_second: 5,
                burst: 5
            }
        );
        for (value, field) in [
            (json!({"per_second": 0}), "rate_limit.per_second"),
            (json!({"per_second": 5, "burst": -1}), "rate_limit.burst"),
            (json!({"burst": 5}), "rate_limit.per_second"),
            (json!({"per_second": 5_000_000}), "rate_limit.per_second"),
            (json!("fast"), "rate_limit"),
            (json!(7), "rate_limit"),
        ] {
            match parse_rate_limit(Some(&value)) {
                Err(ApiError::Invalid { field: named, .. }) => assert_eq!(named, field, "{value}"),
                other => panic!("{value}: {other:?}"),
            }
        }
    }
}
