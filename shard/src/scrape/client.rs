//! The kubelet HTTP client: one shared keep-alive pool, a bearer token, a per-request timeout and
//! a body size cap. Returns the raw body; parsing is `parse`'s job.

use super::dns::Resolver;
use super::target::ScrapeTarget;
use super::token::BearerToken;
use crate::point::Nanos;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use std::sync::Arc;
use std::time::Duration;

/// Largest kubelet body accepted by default (a 110-pod node with 2 containers is ~160 KiB).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// Idle keep-alive connections kept per kubelet.
const IDLE_PER_HOST: usize = 1;
/// Read buffer cap per kubelet connection: bodies stream through it, so a small cap keeps
/// thousands of kept-alive connections cheap without limiting body size.
const READ_BUFFER_MAX: usize = 16 * 1024;
/// How long an idle kubelet connection is kept (longer than any sane resolution).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a scrape failed. Every variant is a partial result for the tick, never fatal; all are
/// worth retrying on the next tick.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("request failed: {0}")]
    Request(String),
    #[error("request failed, status: {0:?}")]
    Status(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("reading body: {0}")]
    Body(String),
    /// No slot under `--kubelet-max-concurrency` within the wait (scrape overload).
    #[error("no scrape slot free within {0:?} (--kubelet-max-concurrency)")]
    Overloaded(Duration),
}

/// What one kubelet returned.
#[derive(Debug)]
pub struct Scraped {
    pub body: Bytes,
    /// When the request was sent: the timestamp of samples that carry none.
    pub sent_at: Nanos,
}

#[derive(Clone)]
pub struct KubeletClient {
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Empty<Bytes>>,
    token: Option<Arc<BearerToken>>,
    timeout: Duration,
    max_body: usize,
}

impl KubeletClient {
    pub fn new(tls: rustls::ClientConfig, bearer_token: Option<&str>, timeout: Duration, max_body: usize) -> Self {
        let mut http = HttpConnector::new_with_resolver(Resolver::system());
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .pool_idle_timeout(IDLE_TIMEOUT)
            .http1_max_buf_size(READ_BUFFER_MAX)
            .build(connector);
        let token = bearer_token.and_then(|t| BearerToken::fixed(t).ok()).map(Arc::new);
        KubeletClient {
            client,
            token,
            timeout,
            max_body,
        }
    }

    /// The same client with `token` as its bearer token (a token file is re-read as it rotates).
    pub fn with_token(mut self, token: BearerToken) -> Self {
        self.token = Some(Arc::new(token));
        self
    }

    /// GETs the target's metrics within the timeout.
    pub async fn scrape(&self, target: &ScrapeTarget, now: Nanos) -> Result<Scraped, ScrapeError> {
        let mut req = http::Request::get(&target.url);
        if let Some(token) = &self.token {
            req = req.header(http::header::AUTHORIZATION, token.header());
        }
        let sent = tokio::time::Instant::now();
        let req = req
            .body(Empty::new())
            .map_err(|e| ScrapeError::Request(e.to_string()))?;
        let fetch = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ScrapeError::Request(error_chain(&e)))?;
            if resp.status() == http::StatusCode::UNAUTHORIZED
                && let Some(token) = &self.token
            {
                token.refused(sent);
            }
            if resp.status() != http::StatusCode::OK {
                return Err(ScrapeError::Status(resp.status().to_string()));
            }
            let limited = Limited::new(resp.into_body(), self.max_body);
            match limited.collect().await {
                Ok(collected) => Ok(collected.to_bytes()),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ScrapeError::TooLarge(self.max_body)),
                Err(e) => Err(ScrapeError::Body(e.to_string())),
            }
        };
        match tokio::time::timeout(self.timeout, fetch).await {
            Ok(Ok(body)) => Ok(Scraped { body, sent_at: now }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ScrapeError::Timeout(self.timeout)),
        }
    }
}

/// An error with its sources, `outer: inner: ...`, for logs and error texts. The one definition
/// for the workspace: the peer client and kubesim's aggregation proxy use it too.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
