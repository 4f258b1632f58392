//! The client one replica calls another with: `POST https://<peer>/<path>` with a bincode body
//! over mutual TLS, one keep-alive pool for all peers, HTTP/1.1, the whole call bounded by the
//! caller's deadline and the answer capped at [`MAX_PEER_BODY_BYTES`].
//!
//! Works on any tokio runtime, actix's per-worker current-thread ones included: connection tasks
//! run on the runtime that opened the connection (hyper-util's `TokioExecutor`), so a client
//! must not outlive the runtime it first connected from while other runtimes still use it.

use super::codec::{self, CONTENT_TYPE, CodecError, MAX_PEER_BODY_BYTES, MAX_PEER_REQUEST_BYTES};
use super::tls::PeerTls;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use shard::scrape::client::error_chain;
use shard::scrape::dns::Resolver;
use std::time::Duration;

/// Longest TCP connect to a peer. Replicas share a cluster network, where a live pod accepts
/// within milliseconds; a dead pod IP drops SYNs, and one second frees the caller (usually a
/// fan-out with a longer deadline) to try the standby.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Idle connections kept per peer: pings, Raft, replication (one request at a time per peer),
/// pulls and fan-out queries can be in flight to the same peer at once, each on its own
/// HTTP/1.1 connection. A connection closed for want of room is a TLS handshake the next time.
const IDLE_PER_PEER: usize = 8;
/// How long an idle connection is kept; below [`super::PEER_SERVER_KEEP_ALIVE`] so the client
/// always closes first.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Most of an error answer's body kept in [`PeerError::Status`].
const MAX_ERROR_TEXT: usize = 4096;

/// Why a peer call failed: always "this request failed", never "this replica is broken". The
/// caller decides (try the standby, leave shards out of a partial answer, retry next tick).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No TCP connection (refused, unreachable, connect timeout, bad address). The peer is
    /// probably down: worth trying another owner now and this one later.
    #[error("connecting: {0}")]
    Connect(String),
    /// The TLS handshake failed or the peer refused our certificate: a certificate or CA
    /// mismatch, not worth retrying until certificates change.
    #[error("TLS: {0}")]
    Tls(String),
    /// The deadline passed before the answer was read. Worth retrying elsewhere.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer answered with a status other than 200, and this text. 5xx may be retried;
    /// 4xx means the two replicas disagree on the protocol.
    #[error("peer answered {0}: {1}")]
    Status(u16, String),
    /// The request or the answer was over its size cap (the limit in bytes). Not worth retrying.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The request could not be encoded, or the answer did not decode. Not worth retrying.
    #[error("bincode: {0}")]
    Decode(String),
    /// The connection broke after it was made (reset, closed mid-answer). Worth retrying.
    #[error("request failed: {0}")]
    Request(String),
}

/// A pooled mutual-TLS HTTP/1.1 client for peers. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PeerClient {
    client: Client<HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>,
}

impl std::fmt::Debug for PeerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerClient").finish_non_exhaustive()
    }
}

impl PeerClient {
    pub fn new(tls: &PeerTls) -> PeerClient {
        // Peer names (headless-service DNS) resolve without libc: the image is one static binary.
        let mut http = HttpConnector::new_with_resolver(Resolver::system());
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let mut config = (*tls.client).clone();
        config.alpn_protocols.clear(); // hyper-rustls asserts it may set them itself
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(IDLE_PER_PEER)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .build(connector);
        PeerClient { client }
    }

    /// POSTs `request` to `https://{address}{path}` (`address` is `host:port`, `path` the full
    /// path, e.g. `/peer/v1/query`) and decodes the answer, all within `deadline`.
    pub async fn call<Req, Resp>(
        &self,
        address: &str,
        path: &str,
        request: &Req,
        deadline: Duration,
    ) -> Result<Resp, PeerError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let body = codec::encode(request, MAX_PEER_REQUEST_BYTES).map_err(|e| match e {
            CodecError::EncodeTooLarge { limit } => PeerError::TooLarge(limit),
            e => PeerError::Decode(e.to_string()),
        })?;
        let req = http::Request::post(format!("https://{address}{path}"))
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PeerError::Connect(format!("bad address or path {address:?} {path:?}: {e}")))?;
        let answer = tokio::time::timeout(deadline, self.exchange(req))
            .await
            .map_err(|_| PeerError::Timeout(deadline))??;
        codec::decode(&answer).map_err(|e| PeerError::Decode(e.to_string()))
    }

    /// Sends the request and reads a 200 answer's body within the cap.
    async fn exchange(&self, req: http::Request<Full<Bytes>>) -> Result<Bytes, PeerError> {
        let resp = self.client.request(req).await.map_err(|e| classify(&e))?;
        let status = resp.status();
        if status != http::StatusCode::OK {
            return Err(PeerError::Status(status.as_u16(), error_text(resp.into_body()).await));
        }
        let declared = resp
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_PEER_BODY_BYTES as u64) {
            return Err(PeerError::TooLarge(MAX_PEER_BODY_BYTES));
        }
        read_limited(resp.into_body(), MAX_PEER_BODY_BYTES).await
    }
}

async fn read_limited(body: hyper::body::Incoming, limit: usize) -> Result<Bytes, PeerError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(PeerError::TooLarge(limit)),
        Err(e) => Err(classify(&*e)),
    }
}

/// The start of an error answer's body (best effort: a broken body gives what arrived).
async fn error_text(mut body: hyper::body::Incoming) -> String {
    let mut text = Vec::new();
    while text.len() < MAX_ERROR_TEXT {
        match body.frame().await {
            Some(Ok(frame)) => text.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..])),
            _ => break,
        }
    }
    text.truncate(MAX_ERROR_TEXT);
    String::from_utf8_lossy(&text).into_owned()
}

/// Sorts a hyper error into TLS, connect or mid-request failure.
fn classify(e: &(dyn std::error::Error + 'static)) -> PeerError {
    let chain = error_chain(e);
    if let Some(tls) = find_tls_error(e) {
        return PeerError::Tls(tls.to_string());
    }
    match e.downcast_ref::<hyper_util::client::legacy::Error>() {
        Some(legacy) if legacy.is_connect() => PeerError::Connect(chain),
        _ => PeerError::Request(chain),
    }
}

/// The `rustls::Error` behind an error, if any. `io::Error` hides its inner error from
/// `source()` (it returns the inner error's source), and hyper-rustls wraps tokio-rustls'
/// `io::Error` in another, so look inside each `io::Error` as well as down the chain.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            next = Some(inner as &(dyn std::error::Error + 'static));
            continue;
        }
        next = e.source();
    }
    None
}
