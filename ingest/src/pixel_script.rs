//! `pixel.js` as this service serves it: the browser script with the service's own
//! endpoint written in, built once at start.

use xxhash_rust::xxh3::xxh3_64;

/// pixel.js with this service's endpoint in it, and its ETag.
pub struct PixelScript {
    body: String,
    etag: String,
}

impl PixelScript {
    pub fn for_service(public_url: &url::Url) -> Self {
        let endpoint = public_url
            .join("api/conversions/pixel")
            .expect("the public URL is a base URL");
        let body =
            include_str!("../assets/pixel.js").replace("__AFFILYNC_ENDPOINT__", endpoint.as_str());
        let etag = format!("\"{:016x}\"", xxh3_64(body.as_bytes()));
        Self { body, etag }
    }

    pub fn body(&self) -> &str {
        &self.body
    }

    /// A strong ETag over the body: it changes when the public URL or the script does.
    pub fn etag(&self) -> &str {
        &self.etag
    }
}
