//! Who is calling. Brand and affiliate keys arrive as `Authorization: Bearer <key>` (and,
//! for postbacks, which are often plain URLs, as `?api_key=`); the admin API takes the
//! operator's token.

use actix_web::HttpRequest;
use actix_web::http::header;
use attributor::catalog::Principal;
use attributor::domain::BrandId;

use crate::error::ApiError;
use crate::rate_limit::CallerKind;
use crate::state::AppState;

/// Where a key may be presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFrom<'a> {
    Header,
    /// The header, else the query string's `api_key`, given here by the caller: the one
    /// handler that takes it (postbacks) parses its query anyway, and a second parse for
    /// the key alone was a percent or two of a postback's cost.
    HeaderOrQuery(Option<&'a str>),
}

pub fn principal(
    request: &HttpRequest,
    state: &AppState,
    from: KeyFrom,
) -> Result<Principal, ApiError> {
    let key = match (bearer(request), from) {
        (Some(key), _) => Some(key),
        (None, KeyFrom::HeaderOrQuery(in_query)) => {
            in_query.filter(|key| !key.is_empty()).map(str::to_owned)
        }
        (None, KeyFrom::Header) => None,
    };
    let key = key.ok_or_else(|| {
        ApiError::Unauthorized(match from {
            KeyFrom::Header => "an API key is required: Authorization: Bearer <key>".into(),
            KeyFrom::HeaderOrQuery(_) => {
                "an API key is required: Authorization: Bearer <key> or ?api_key=<key>".into()
            }
        })
    })?;
    let found = state
        .catalog
        .key(&key)
        .ok_or_else(|| ApiError::Unauthorized("the API key is not valid".into()))?;
    let kind = match found.principal {
        Principal::Brand(_) => CallerKind::BrandKey,
        Principal::Affiliate(_) => CallerKind::AffiliateKey,
    };
    // After the key is known: unknown keys must not fill the limiter's memory.
    state
        .rate_limiter
        .check_key(&found.hash, state.catalog.rate_limit(&found.hash), kind)
        .map_err(|throttled| ApiError::RateLimited {
            whose: "this API key",
            retry_after_seconds: throttled.retry_after_seconds(),
        })?;
    Ok(found.principal.clone())
}

/// Takes a token from the client address's bucket, for what is called without a key.
pub fn address_allowed(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(peer) = request.peer_addr() else {
        return Ok(());
    };
    state
        .rate_limiter
        .check_address(peer.ip())
        .map_err(|throttled| ApiError::RateLimited {
            whose: "this address",
            retry_after_seconds: throttled.retry_after_seconds(),
        })
}

/// The calling brand; affiliates are refused with 403.
pub fn brand(request: &HttpRequest, state: &AppState, from: KeyFrom) -> Result<BrandId, ApiError> {
    match principal(request, state, from)? {
        Principal::Brand(brand) => Ok(brand),
        Principal::Affiliate(_) => Err(ApiError::Forbidden(
            "this call needs a brand API key".into(),
        )),
    }
}

/// Checks the admin token. With no token configured the admin API does not exist.
pub fn admin(request: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::NotFound(
            "the admin API is off; set AFFILYNC_ADMIN_TOKEN to turn it on".into(),
        ));
    };
    let presented = bearer(request).ok_or_else(|| {
        ApiError::Unauthorized("the admin token is required: Authorization: Bearer <token>".into())
    })?;
    if constant_time_eq(presented.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "the admin token is not valid".into(),
        ))
    }
}

pub(crate) fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

/// Compares without an early exit, so response time says nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
