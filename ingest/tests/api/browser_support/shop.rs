//! The brand's shop: a tiny HTTP server reached as `http://localhost:<port>`, another site
//! than the tracking host on `127.0.0.1`, with the pixel on its pages exactly as the top
//! comment of pixel.js tells shops to put it.

use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Shop {
    origin: String,
    server: JoinHandle<()>,
}

/// What the pages need to know: where the pixel comes from and whose shop this is.
struct Pages {
    tracking: String,
    brand_id: String,
}

impl Shop {
    /// A shop of `brand_id` whose pages load the pixel from the service at `tracking`.
    pub async fn start(tracking: &str, brand_id: &str) -> Shop {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin = format!("http://localhost:{}", listener.local_addr().unwrap().port());
        let pages = Arc::new(Pages {
            tracking: tracking.trim_end_matches('/').to_owned(),
            brand_id: brand_id.to_owned(),
        });
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let pages = Arc::clone(&pages);
                tokio::spawn(async move {
                    let _ = pages.answer(stream).await;
                });
            }
        });
        Shop { origin, server }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.origin)
    }

    /// The thank-you page reporting `order` (99.99 USD), with the customer's e-mail if given.
    pub fn thank_you(&self, order: &str, email: Option<&str>) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("order", order);
        if let Some(email) = email {
            query.append_pair("email", email);
        }
        self.url(&format!("/thanks?{}", query.finish()))
    }

    /// An affiliate's page with an ad that is the tracking link `link`.
    pub fn ad_for(&self, link: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("to", link)
            .finish();
        self.url(&format!("/ad?{query}"))
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Pages {
    async fn answer(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut head = Vec::new();
        let mut chunk = [0u8; 4096];
        while !head.windows(4).any(|window| window == b"\r\n\r\n") {
            let read = stream.read(&mut chunk).await?;
            if read == 0 || head.len() > 64 * 1024 {
                return Ok(());
            }
            head.extend_from_slice(&chunk[..read]);
        }
        let head = String::from_utf8_lossy(&head);
        let target = head.split(' ').nth(1).unwrap_or("/");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let param = |name: &str| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        let (status, body) = match path {
            "/ad" => ("200 OK", ad(&param("to").unwrap_or_default())),
            "/landing" => ("200 OK", self.landing()),
            "/plain" => ("200 OK", document("Welcome", "", "<h1>Welcome</h1>")),
            "/thanks" => (
                "200 OK",
                self.thank_you(&param("order").unwrap_or_default(), param("email")),
            ),
            _ => ("404 Not Found", document("Not found", "", "")),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    }

    fn loader(&self) -> String {
        format!(
            r#"<script src="{}/pixel.js" async></script>"#,
            self.tracking
        )
    }

    fn init(&self) -> String {
        format!(
            "<script>affilync('init', {});</script>",
            json!({"brand_id": self.brand_id})
        )
    }

    /// Every page of the shop carries the pixel, in the order the snippet shows.
    fn landing(&self) -> String {
        let head = format!(
            "<script>{}</script>{}{}",
            queue_stub(),
            self.loader(),
            self.init()
        );
        document("Spring sale", &head, "<h1>Spring sale</h1>")
    }

    /// The conversion is reported before the script tag is even parsed, so it always waits
    /// in the stub's queue until the script loads and drains it.
    fn thank_you(&self, order: &str, email: Option<String>) -> String {
        let mut conversion = json!({"order_id": order, "amount": 99.99, "currency": "USD"});
        if let Some(email) = email {
            conversion["customer_email"] = email.into();
        }
        let body = format!(
            "<h1>Thank you</h1><script>{}</script>{}\
             <script>affilync('track', 'conversion', {conversion});</script>{}",
            queue_stub(),
            self.init(),
            self.loader()
        );
        document("Thank you", "", &body)
    }
}

fn ad(link: &str) -> String {
    let href = link
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    document(
        "A blog",
        "",
        &format!(
            r#"<p>Read about it, then <a id="ad" href="{href}">shop the spring sale</a>.</p>"#
        ),
    )
}

fn document(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>{head}</head>\
         <body>{body}</body></html>"
    )
}

/// The queue stub as pixel.js's own top comment gives it to shops.
fn queue_stub() -> &'static str {
    include_str!("../../../assets/pixel.js")
        .lines()
        .find_map(|line| {
            line.trim_start_matches([' ', '*'])
                .strip_prefix("<script>")?
                .strip_suffix("</script>")
                .filter(|script| script.starts_with("window.affilync="))
        })
        .expect("pixel.js documents the queue stub in its top comment")
}
