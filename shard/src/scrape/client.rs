//! The kubelet HTTP client: kept-alive TLS connections (one idle connection per kubelet), a
//! bearer token, a per-request timeout and a body size cap. Returns the raw body; parsing is
//! `parse`'s job. The exchange itself is `http1.rs`: an idle connection costs its TLS stream
//! alone (about 6 KiB), which is what lets a replica keep thousands of kubelets' connections.

use super::dns::Resolver;
use super::http1::{self, ExchangeError};
use super::target::ScrapeTarget;
use super::token::BearerToken;
use crate::point::Nanos;
use bytes::Bytes;
use rustls::pki_types::ServerName;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Largest kubelet body accepted by default (a 110-pod node with 2 containers is ~160 KiB).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// How long an idle kubelet connection is kept (longer than any sane resolution).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Idle connections older than [`IDLE_TIMEOUT`] (kubelets of deleted nodes) are swept after
/// this many checkouts.
const SWEEP_EVERY: u32 = 1024;

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

/// Where a target URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    /// `host:port` as written in the URL (the pool's key and the `Host` header).
    authority: String,
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// `https://host:port/path`, as [`super::AddressPolicy::resolve`] writes it (IPv6 hosts in
    /// brackets).
    fn parse(url: &str) -> Result<Endpoint, ScrapeError> {
        let bad = || ScrapeError::Request(format!("not an https://host:port/path URL: {url:?}"));
        let rest = url.strip_prefix("https://").ok_or_else(bad)?;
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        let port = port.parse::<u16>().map_err(|_| bad())?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Endpoint {
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// An idle connection and when it was last used.
struct Idle {
    stream: TlsStream<TcpStream>,
    since: Instant,
}

#[derive(Default)]
struct Pool {
    idle: HashMap<String, Idle>,
    checkouts: u32,
}

#[derive(Clone)]
pub struct KubeletClient {
    tls: TlsConnector,
    resolver: Resolver,
    pool: Arc<Mutex<Pool>>,
    token: Option<Arc<BearerToken>>,
    timeout: Duration,
    max_body: usize,
}

impl KubeletClient {
    pub fn new(tls: rustls::ClientConfig, bearer_token: Option<&str>, timeout: Duration, max_body: usize) -> Self {
        let token = bearer_token.and_then(|t| BearerToken::fixed(t).ok()).map(Arc::new);
        KubeletClient {
            tls: TlsConnector::from(Arc::new(tls)),
            resolver: Resolver::system(),
            pool: Arc::default(),
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
        let endpoint = Endpoint::parse(&target.url)?;
        let authorization = self.token.as_ref().map(|t| t.header());
        let request = http1::request(
            &endpoint.authority,
            &endpoint.path,
            authorization.as_ref().map(|v| v.as_bytes()),
        );
        let sent = Instant::now();
        let answer = match tokio::time::timeout(self.timeout, self.fetch(&endpoint, &request)).await {
            Ok(answer) => answer?,
            Err(_) => return Err(ScrapeError::Timeout(self.timeout)),
        };
        if answer.status == 401
            && let Some(token) = &self.token
        {
            token.refused(sent);
        }
        if answer.status != 200 {
            return Err(ScrapeError::Status(status_text(answer.status)));
        }
        Ok(Scraped {
            body: answer.body,
            sent_at: now,
        })
    }

    /// One exchange on an idle connection to the endpoint if there is one, else on a new one.
    /// A kept-alive connection the kubelet closed meanwhile fails before any answer arrives:
    /// the request is sent again, once, on a new connection.
    async fn fetch(&self, endpoint: &Endpoint, request: &[u8]) -> Result<http1::Answer, ScrapeError> {
        if let Some(mut stream) = self.checkout(&endpoint.authority) {
            match http1::exchange(&mut stream, request, self.max_body).await {
                Err(ExchangeError::NoAnswer(e)) => {
                    tracing::trace!(kubelet = %endpoint.authority, error = %e, "kept-alive connection closed; reconnecting");
                }
                answer => return self.checkin(endpoint, stream, answer),
            }
        }
        let mut stream = self.connect(endpoint).await?;
        let answer = http1::exchange(&mut stream, request, self.max_body).await;
        self.checkin(endpoint, stream, answer)
    }

    fn checkout(&self, authority: &str) -> Option<TlsStream<TcpStream>> {
        let mut pool = self.pool.lock().expect("kubelet pool lock");
        pool.checkouts = pool.checkouts.wrapping_add(1);
        if pool.checkouts % SWEEP_EVERY == 0 {
            pool.idle.retain(|_, idle| idle.since.elapsed() < IDLE_TIMEOUT);
        }
        pool.idle
            .remove(authority)
            .filter(|idle| idle.since.elapsed() < IDLE_TIMEOUT)
            .map(|idle| idle.stream)
    }

    /// Keeps the connection for the next scrape if the answer allows; turns the answer into the
    /// scrape's result.
    fn checkin(
        &self,
        endpoint: &Endpoint,
        stream: TlsStream<TcpStream>,
        answer: Result<http1::Answer, ExchangeError>,
    ) -> Result<http1::Answer, ScrapeError> {
        let answer = answer.map_err(|e| match e {
            ExchangeError::TooLarge(n) => ScrapeError::TooLarge(n),
            ExchangeError::NoAnswer(e) => ScrapeError::Request(format!("connection closed: {e}")),
            e => ScrapeError::Body(e.to_string()),
        })?;
        if answer.reusable {
            let mut stream = stream;
            shrink_receive_buffer(&mut stream);
            let idle = Idle {
                stream,
                since: Instant::now(),
            };
            self.pool
                .lock()
                .expect("kubelet pool lock")
                .idle
                .insert(endpoint.authority.clone(), idle);
        }
        Ok(answer)
    }

    /// A new TLS connection to the endpoint (the name resolved unless it is an address).
    async fn connect(&self, endpoint: &Endpoint) -> Result<TlsStream<TcpStream>, ScrapeError> {
        let failed = |what: &str, e: &dyn std::error::Error| {
            ScrapeError::Request(format!("{what} {}: {}", endpoint.authority, error_chain(e)))
        };
        let addresses: Vec<SocketAddr> = match endpoint.host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, endpoint.port)],
            Err(_) => self
                .resolver
                .lookup(&endpoint.host)
                .await
                .map_err(|e| failed("resolving", &e))?
                .into_iter()
                .map(|a| SocketAddr::new(a.ip(), endpoint.port))
                .collect(),
        };
        let mut last = None;
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let tcp = tcp.ok_or_else(|| {
            let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
            failed("connecting to", &e)
        })?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| failed("kubelet name", &e))?;
        self.tls.connect(name, tcp).await.map_err(|e| failed("TLS with", &e))
    }
}

/// Lets rustls give back the receive buffer a body grew (32 KiB after a 16 KiB record) before
/// the connection idles for a resolution: a read attempt that finds no data shrinks an empty
/// buffer to rustls' 4 KiB read size ("reduce the buffer size if there are neither full nor
/// partial messages in it", `DeframerVecBuffer::prepare_read`). With thousands of kubelets
/// that is most of an idle connection's memory.
fn shrink_receive_buffer(stream: &mut TlsStream<TcpStream>) {
    struct NothingYet;
    impl std::io::Read for NothingYet {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::WouldBlock.into())
        }
    }
    let (_, connection) = stream.get_mut();
    let _ = connection.read_tls(&mut NothingYet);
}

/// `401 Unauthorized`, as the status used to be reported.
fn status_text(status: u16) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    format!("{status} {reason}").trim_end().to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_urls_split_into_authority_host_port_and_path() {
        let e = Endpoint::parse("https://10.0.0.5:10250/metrics/resource").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.host.as_str(), e.port, e.path.as_str()),
            ("10.0.0.5:10250", "10.0.0.5", 10250, "/metrics/resource")
        );
        let e = Endpoint::parse("https://[fd00::1]:10250/custom").unwrap();
        assert_eq!((e.host.as_str(), e.authority.as_str()), ("fd00::1", "[fd00::1]:10250"));
        let e = Endpoint::parse("https://node-1:10255").unwrap();
        assert_eq!((e.host.as_str(), e.path.as_str()), ("node-1", "/"));
        for bad in ["http://n:1/x", "https://n/x", "https://:1/x", "https://n:port/x"] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_read_as_they_did() {
        assert_eq!(status_text(401), "401 Unauthorized");
        assert_eq!(status_text(599), "599");
    }
}
