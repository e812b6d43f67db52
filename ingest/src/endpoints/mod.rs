//! One file per route family, and the routes table.

mod actor;
mod admin;
mod bulk_status;
mod click;
mod common;
mod docs;
mod export;
mod held;
mod history;
mod key_limits;
mod listing;
mod ops;
mod pixel;
mod report;
mod reports;
mod review;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

pub use docs::document as openapi_document;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(resource("/api/conversions/track").route(web::post().to(report::track)))
        .service(
            resource("/api/conversions/postback")
                .route(web::get().to(report::postback))
                .route(web::post().to(report::postback)),
        )
        // Before /api/conversions/{id}, which would otherwise match "pixel" as an id.
        .service(
            resource("/api/conversions/pixel")
                .route(web::get().to(pixel::report))
                .route(web::post().to(pixel::report))
                .route(web::method(actix_web::http::Method::OPTIONS).to(pixel::preflight)),
        )
        // Before /api/conversions/{id}, which would otherwise match "export" as an id.
        .service(resource("/api/conversions/export").route(web::get().to(export::export)))
        .service(resource("/api/conversions").route(web::get().to(listing::list)))
        // Before /api/conversions/{id}, which would otherwise match "status" as an id.
        .service(
            resource("/api/conversions/status")
                .route(
                    web::post()
                        .guard(actix_web::guard::fn_guard(bulk_status::is_csv))
                        .to(bulk_status::decide_csv),
                )
                .route(web::post().to(bulk_status::decide)),
        )
        .service(
            resource("/api/conversions/{id}")
                .route(web::get().to(listing::get))
                .route(web::patch().to(review::patch)),
        )
        .service(resource("/api/reports").route(web::get().to(reports::report)))
        .service(resource("/api/conversions/{id}/history").route(web::get().to(history::history)))
        .service(resource("/c/{link_id}").route(web::get().to(click::redirect)))
        .service(resource("/pixel.js").route(web::get().to(pixel::script)))
        .service(resource("/api/admin/brands").route(web::post().to(admin::create_brand)))
        .service(resource("/api/admin/affiliates").route(web::post().to(admin::create_affiliate)))
        .service(resource("/api/admin/campaigns").route(web::post().to(admin::create_campaign)))
        .service(resource("/api/admin/links").route(web::post().to(admin::create_link)))
        .service(resource("/api/admin/api-keys").route(web::post().to(admin::create_api_key)))
        .service(
            resource("/api/admin/api-keys/rate-limit")
                .route(web::put().to(key_limits::set_key_rate_limit)),
        )
        .service(resource("/metrics").route(web::get().to(ops::metrics)))
        .service(resource("/healthz").route(web::get().to(ops::healthz)))
        .service(resource("/readyz").route(web::get().to(ops::readyz)))
        .service(resource("/openapi.json").route(web::get().to(docs::openapi_json)))
        .service(resource("/docs").route(web::get().to(docs::docs)))
        .service(resource("/docs/{file}").route(web::get().to(docs::docs_asset)))
        .default_service(web::to(no_route));
}

/// A resource whose other methods answer 405 in the service's error format.
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

async fn no_route(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "there is no {} {}",
        request.method(),
        request.path()
    )))
}

async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    HttpResponse::MethodNotAllowed().json(serde_json::json!({
        "error": {
            "code": "method_not_allowed",
            "message": format!("{} does not accept {}", request.path(), request.method()),
        }
    }))
}
