//! Who made a status change, as its history row records it: the calling key's prefix
//! (the secret itself is never kept). Comes after the caller extractor, which has already
//! refused a missing or unknown key.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::ApiError;
use crate::state::AppState;

pub struct KeyActor(pub String);

impl FromRequest for KeyActor {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let prefix = request
            .app_data::<web::Data<AppState>>()
            .zip(crate::auth::bearer(request))
            .and_then(|(state, key)| state.catalog.key(&key))
            .map(|key| key.prefix.clone());
        ready(match prefix {
            Some(prefix) => Ok(Self(format!("key:{prefix}"))),
            None => Err(ApiError::Unauthorized("the API key is not valid".into())),
        })
    }
}
