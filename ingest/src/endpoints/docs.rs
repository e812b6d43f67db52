//! `/openapi.json` and `/docs`: the OpenAPI 3.1 document of the public API, generated from
//! the handlers' own annotations and the answer types' derived schemas, and Swagger UI
//! over it (served from the binary: no CDN, works offline).

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::openapi::schemas::{ErrorBody, ErrorDetail};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Affilync ingestion",
        description = "Conversions reported by brands (server-side JSON, postback URLs, a browser pixel) against clicks on affiliates' tracking links; listings and status changes for brands and affiliates; the operator's admin API."
    ),
    paths(
        super::report::track,
        super::report::postback,
        super::pixel::report,
        super::pixel::script,
        super::listing::list,
        super::listing::get,
        super::review::patch,
        super::bulk_status::decide,
        super::history::history,
        super::reports::report,
        super::export::export,
        super::click::redirect,
        super::admin::create_brand,
        super::admin::create_affiliate,
        super::admin::create_campaign,
        super::admin::create_link,
        super::admin::create_api_key,
        super::key_limits::set_key_rate_limit,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security, &OperationIdPerMethod),
    tags(
        (name = "conversions", description = "Reporting conversions: brand keys"),
        (name = "browser", description = "The pixel and tracking links: no key"),
        (name = "reading", description = "Listing and reviewing: brand and affiliate keys"),
        (name = "admin", description = "The operator's admin API: the admin token"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

/// Brand and affiliate keys as `Authorization: Bearer`, a key in the postback's query,
/// and the operator's admin token.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A brand's or affiliate's API key"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key_query",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The operator's AFFILYNC_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// A handler serving two methods (postback and pixel take GET and POST) is one operation
/// id for utoipa; OpenAPI wants one per method, so the method is appended to those.
struct OperationIdPerMethod;

impl Modify for OperationIdPerMethod {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                ("get", &mut item.get),
                ("post", &mut item.post),
                ("put", &mut item.put),
                ("patch", &mut item.patch),
                ("delete", &mut item.delete),
            ];
            let present: Vec<_> = operations
                .into_iter()
                .filter_map(|(method, operation)| Some((method, operation.as_mut()?)))
                .collect();
            let shared = present.len() > 1
                && present
                    .windows(2)
                    .all(|pair| pair[0].1.operation_id == pair[1].1.operation_id);
            if shared {
                for (method, operation) in present {
                    if let Some(id) = &mut operation.operation_id {
                        id.push('_');
                        id.push_str(method);
                    }
                }
            }
        }
    }
}

/// The document, built once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Affilync ingestion API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"#;

/// Kept out of the page so that a strict Content-Security-Policy (no inline scripts) works.
const DOCS_INIT: &str =
    "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#docs', deepLinking: true});\n";

pub async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

/// Swagger UI's files (Apache-2.0, vendored from npm's swagger-ui-dist; see its LICENSE
/// beside them).
pub async fn docs_asset(name: web::Path<String>) -> HttpResponse {
    let (body, content_type): (&'static [u8], &str) = match name.as_str() {
        "swagger-ui-bundle.js" => (
            include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
            "application/javascript; charset=utf-8",
        ),
        "swagger-ui.css" => (
            include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
            "text/css; charset=utf-8",
        ),
        "init.js" => (
            DOCS_INIT.as_bytes(),
            "application/javascript; charset=utf-8",
        ),
        _ => return HttpResponse::NotFound().finish(),
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}
