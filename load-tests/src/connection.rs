//! One HTTP/1.1 connection kept alive for one sender: requests go out on it one after
//! another, and it is opened again only after it broke. Raw hyper rather than a pooled
//! client: with one connection per sender there is nothing to pool, and the generator
//! shares the machine with the server, so every microsecond it spends is taken from what
//! it measures.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HOST, HeaderValue, LOCATION};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::target::{Failure, Reply};

pub type Request = http::Request<Full<Bytes>>;

/// Where a connection goes and what every request on it carries.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port` to connect to.
    pub address: String,
    /// The `Host` header.
    pub host: HeaderValue,
    /// A path prefix of the base URL, usually empty.
    pub base_path: String,
    pub timeout: Duration,
}

impl Endpoint {
    /// From a base URL like `http://127.0.0.1:8080`.
    pub fn parse(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        let url = url::Url::parse(base)?;
        anyhow::ensure!(
            url.scheme() == "http",
            "{base}: only http:// targets are load tested"
        );
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{base} names no host"))?;
        let port = url.port_or_known_default().unwrap_or(80);
        let address = format!("{host}:{port}");
        Ok(Self {
            host: HeaderValue::from_str(&address)?,
            address,
            base_path: url.path().trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// A request for `path_and_query` under the base URL, with `Host` set.
    pub fn request(&self, method: http::Method, path_and_query: &str) -> http::request::Builder {
        http::Request::builder()
            .method(method)
            .uri(format!("{}{path_and_query}", self.base_path))
            .header(HOST, self.host.clone())
    }
}

pub struct Connection {
    endpoint: Endpoint,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            sender: None,
        }
    }

    /// Sends and reads the whole answer within the timeout. A connection that failed or
    /// timed out is dropped and the next request opens a new one.
    pub async fn send(&mut self, request: Request) -> Result<Reply, Failure> {
        match tokio::time::timeout(self.endpoint.timeout, self.exchange(request)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(failure)) => {
                self.sender = None;
                Err(failure)
            }
            Err(_) => {
                self.sender = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn exchange(&mut self, request: Request) -> Result<Reply, Failure> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(connect(&self.endpoint.address).await?),
        };
        sender.ready().await.map_err(transport)?;
        let response = sender.send_request(request).await.map_err(transport)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(transport)?.to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            replayed: parts
                .headers
                .get("idempotent-replayed")
                .is_some_and(|value| value.as_bytes() == b"true"),
            location: parts
                .headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body,
        })
    }
}

async fn connect(address: &str) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = TcpStream::connect(address).await.map_err(transport)?;
    stream.set_nodelay(true).map_err(transport)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(transport)?;
    tokio::spawn(async move {
        // Ends when the connection closes; the sender then reports it closed.
        let _ = connection.await;
    });
    Ok(sender)
}

fn transport(error: impl std::error::Error) -> Failure {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    Failure::Transport(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_host_port_and_path() {
        let endpoint = Endpoint::parse("http://127.0.0.1:8090/", Duration::from_secs(1)).unwrap();
        assert_eq!(endpoint.address, "127.0.0.1:8090");
        assert_eq!(endpoint.base_path, "");
        let endpoint = Endpoint::parse("http://example.com/api", Duration::from_secs(1)).unwrap();
        assert_eq!(endpoint.address, "example.com:80");
        assert_eq!(endpoint.base_path, "/api");
        assert!(Endpoint::parse("https://example.com", Duration::from_secs(1)).is_err());
    }
}
