//! The server under load as the generator sees it: where its connections go (the measured
//! requests use [`crate::connection`]), a reqwest client for setting up, and the few facts
//! of an answer that are judged.

use std::time::Duration;

use bytes::Bytes;
use reqwest::redirect::Policy;

use crate::connection::Endpoint;

/// A running Affilync (or the baseline) at `base`, e.g. `http://127.0.0.1:8080`.
#[derive(Clone)]
pub struct Target {
    /// For setup and the pool: admin calls, clicks, stored conversions.
    pub http: reqwest::Client,
    pub base: String,
    /// For the measured requests, one connection per sender.
    pub endpoint: Endpoint,
}

/// What came back for one request.
pub struct Reply {
    pub status: u16,
    /// `Idempotent-Replayed: true` was set.
    pub replayed: bool,
    /// The `Location` header of a redirect.
    pub location: Option<String>,
    pub body: Bytes,
}

/// A request that got no HTTP answer: whether the server acted on it is unknown.
#[derive(Debug, Clone)]
pub enum Failure {
    Timeout,
    Transport(String),
}

impl Target {
    /// A setup client that keeps up to `connections` idle connections to the target, so
    /// that as many concurrent requests each reuse one instead of connecting anew.
    pub fn new(base: &str, connections: usize, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .no_proxy()
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            endpoint: Endpoint::parse(base, timeout)?,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends and reads the whole answer; the body is read so that the connection can be
    /// reused for the next request.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Reply, Failure> {
        let response = request.send().await.map_err(failure)?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let replayed = headers
            .get("idempotent-replayed")
            .is_some_and(|value| value.as_bytes() == b"true");
        let location = headers
            .get(reqwest::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.map_err(failure)?;
        Ok(Reply {
            status,
            replayed,
            location,
            body,
        })
    }
}

fn failure(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        Failure::Timeout
    } else {
        // The chain says what happened: "connection refused", "connection reset"...
        let mut text = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        Failure::Transport(text)
    }
}
