//! The do-nothing baseline: an actix-web server on the service's routes that answers every
//! request at once with a fixed answer the size and shape of the service's real one (a
//! 201 conversion, a 302 with the same headers, admin ids). Whatever rate the generator
//! reaches against it is the ceiling set by the machine, the HTTP stack and the generator
//! itself; the service's rate is reported as a share of it.

use std::net::TcpListener;

use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::setup::LANDING_URL;

/// A 201 body of the real size: the service's answer to a tracked sale, ids and times
/// fixed (596 bytes, as the service's for a run's order ids).
pub const CONVERSION_BODY: &str = concat!(
    r#"{"data":{"conversion_id":"conv_e05d15cc763b8ae73b91852099715a57","#,
    r#""click_id":"clk_Aa8IOf8Z2JtNawbZwkK0Ee2U_rXQPH0IBQAsDvNxqx2i","#,
    r#""affiliate_id":"usr_243046fbd9c85835","campaign_id":"camp_697faf9f5eade376","#,
    r#""commission_amount":"10.00","status":"pending","created_at":"2026-11-25T12:51:14Z","#,
    r#""order_id":"lt19ab2c3d4e5-123456","amount":"99.99","currency":"USD","#,
    r#""event_type":"sale","commission_currency":"USD","source":"api","status_reason":null,"#,
    r#""note":null,"updated_at":"2026-11-25T12:51:14Z","attribution":{"method":"click_id","#,
    r#""click_time":"2026-11-25T12:51:14Z","seconds_from_click":0},"metadata":{}}}"#
);

/// A click id of the real length (48 characters).
pub const CLICK_ID: &str = "clk_Aa8IOf8Z2JtNawbZwkK0Ee2U_rXQPH0IBQAsDvNxqx2i";

/// Serves until the process gets SIGINT or SIGTERM, on `workers` HTTP threads.
pub async fn serve(listener: TcpListener, workers: usize) -> std::io::Result<()> {
    HttpServer::new(|| App::new().configure(routes))
        .workers(workers.max(1))
        .listen(listener)?
        .run()
        .await
}

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/api/conversions/track", web::post().to(conversion))
        .route("/api/conversions/postback", web::get().to(conversion))
        .route("/api/conversions/postback", web::post().to(conversion))
        .route("/c/{link_id}", web::get().to(click))
        .route("/api/admin/brands", web::post().to(brand))
        .route("/api/admin/affiliates", web::post().to(affiliate))
        .route("/api/admin/campaigns", web::post().to(campaign))
        .route("/api/admin/links", web::post().to(link))
        .route("/api/admin/api-keys", web::post().to(api_key))
        .route("/api/admin/api-keys/rate-limit", web::put().to(ok))
        .route("/healthz", web::get().to(ok))
        .route("/readyz", web::get().to(ok))
        .route("/metrics", web::get().to(metrics));
}

/// The body is read, as the service reads it, and ignored.
async fn conversion(_body: web::Bytes) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/json")
        .body(CONVERSION_BODY)
}

async fn click() -> HttpResponse {
    let location = format!("{LANDING_URL}&afk_cid={CLICK_ID}");
    HttpResponse::Found()
        .insert_header((
            header::SET_COOKIE,
            format!("afk_cid={CLICK_ID}; HttpOnly; SameSite=None; Secure; Path=/; Max-Age=2592000"),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::LOCATION, location))
        .finish()
}

fn created(data: &'static str) -> HttpResponse {
    HttpResponse::Created()
        .content_type("application/json")
        .body(data)
}

async fn brand(_body: web::Bytes) -> HttpResponse {
    created(
        r#"{"data":{"brand_id":"brd_00000000000000b1","name":"baseline brand","created_at":"2026-01-01T00:00:00Z"}}"#,
    )
}

async fn affiliate(_body: web::Bytes) -> HttpResponse {
    created(
        r#"{"data":{"affiliate_id":"usr_00000000000000a1","name":"baseline publisher","created_at":"2026-01-01T00:00:00Z"}}"#,
    )
}

async fn campaign(_body: web::Bytes) -> HttpResponse {
    created(
        r#"{"data":{"campaign_id":"camp_00000000000000c1","brand_id":"brd_00000000000000b1","name":"baseline campaign","landing_url":"https://shop.example.com/landing?utm_source=affilync","currency":"USD","cookie_window_days":30,"commission":{"sale":{"percent":"10"}},"created_at":"2026-01-01T00:00:00Z"}}"#,
    )
}

async fn link(_body: web::Bytes) -> HttpResponse {
    created(
        r#"{"data":{"link_id":"lnk_00000000000000d1","campaign_id":"camp_00000000000000c1","affiliate_id":"usr_00000000000000a1","url":"http://baseline/c/lnk_00000000000000d1","created_at":"2026-01-01T00:00:00Z"}}"#,
    )
}

async fn api_key(_body: web::Bytes) -> HttpResponse {
    created(
        r#"{"data":{"brand_id":"brd_00000000000000b1","api_key":"afk_baselinebaselinebaselinebaselin"}}"#,
    )
}

async fn ok() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_answers_have_the_real_sizes() {
        assert_eq!(CONVERSION_BODY.len(), 596);
        assert!(serde_json::from_str::<serde_json::Value>(CONVERSION_BODY).is_ok());
        assert_eq!(CLICK_ID.len(), 48);
    }
}
