//! The aggregation proxy for `/apis/metrics.k8s.io/*`, as kube-aggregator does it: forward over
//! HTTPS to a ready replica with the front-proxy client certificate and `X-Remote-User` /
//! `X-Remote-Group` headers (the caller's own credentials removed), keep path, query and
//! Accept, fail over on connection errors, and answer `503 service unavailable` (text/plain)
//! when no replica is ready.

use super::auth::UserInfo;
use crate::http::{Body, Request, text};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often each replica's `/readyz` is checked.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_millis(500);
/// A `/readyz` check fails after this long.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// A proxied request fails after this long (kube-aggregator's default proxy timeout is 60 s).
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request body forwarded.
pub const MAX_PROXY_BODY: usize = 1024 * 1024;
/// The identity the aggregator's own availability checks use.
const AGGREGATOR_USER: &str = "system:kube-aggregator";

/// A registered replica (an endpoint of the APIService's Service).
#[derive(Debug)]
pub struct Replica {
    pub address: String,
    ready: AtomicBool,
}

impl Replica {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

pub struct Proxy {
    replicas: RwLock<Vec<Arc<Replica>>>,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    next: AtomicUsize,
}

impl Proxy {
    /// A proxy presenting `client_config`'s front-proxy certificate.
    pub fn new(client_config: rustls::ClientConfig) -> Arc<Proxy> {
        Arc::new(Proxy {
            replicas: RwLock::new(Vec::new()),
            client: crate::tls::https_client(client_config),
            next: AtomicUsize::new(0),
        })
    }

    /// Replaces the set of replicas (`host:port`); ones already known keep their readiness.
    pub fn set_replicas(&self, addresses: &[String]) {
        let mut replicas = self.replicas.write().expect("replicas lock");
        let old = std::mem::take(&mut *replicas);
        *replicas = addresses
            .iter()
            .map(|a| {
                old.iter().find(|r| &r.address == a).cloned().unwrap_or_else(|| {
                    Arc::new(Replica {
                        address: a.clone(),
                        ready: AtomicBool::new(false),
                    })
                })
            })
            .collect();
    }

    pub fn replicas(&self) -> Vec<(String, bool)> {
        self.replicas
            .read()
            .expect("replicas lock")
            .iter()
            .map(|r| (r.address.clone(), r.is_ready()))
            .collect()
    }

    /// Checks every replica's `/readyz` every `interval`, until the process ends.
    pub fn spawn_health_checks(self: &Arc<Self>, interval: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                me.check_all().await;
            }
        });
    }

    /// One round of readiness checks, all replicas at once.
    pub async fn check_all(&self) {
        let replicas = self.replicas.read().expect("replicas lock").clone();
        let checks = replicas.iter().map(|r| async move {
            let ready = self.check(&r.address).await;
            if ready != r.is_ready() {
                tracing::info!(replica = %r.address, ready, "replica readiness changed");
            }
            r.ready.store(ready, Ordering::Relaxed);
        });
        futures::future::join_all(checks).await;
    }

    async fn check(&self, address: &str) -> bool {
        let Ok(req) = http::Request::get(format!("https://{address}/readyz"))
            .header("X-Remote-User", AGGREGATOR_USER)
            .header("X-Remote-Group", "system:masters")
            .body(crate::http::empty())
        else {
            return false;
        };
        match tokio::time::timeout(HEALTH_TIMEOUT, self.client.request(req)).await {
            Ok(Ok(resp)) => resp.status().is_success(),
            Ok(Err(e)) => {
                tracing::debug!(replica = address, error = ?e, "readiness check failed");
                false
            }
            Err(_) => false,
        }
    }

    /// Forwards `req` for `user` to a ready replica.
    pub async fn forward(&self, req: Request, user: &UserInfo) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let Some(body) = crate::http::read_body(body, MAX_PROXY_BODY).await else {
            return super::status::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "request body too large",
            );
        };
        let candidates = self.ready_in_turn();
        for replica in candidates {
            let upstream = match upstream_request(&parts, &replica.address, user, body.clone()) {
                Ok(r) => r,
                Err(e) => return super::status::bad_request(&e),
            };
            match tokio::time::timeout(PROXY_TIMEOUT, self.client.request(upstream)).await {
                Ok(Ok(resp)) => return relay(resp),
                Ok(Err(e)) if e.is_connect() => {
                    tracing::warn!(replica = %replica.address, error = %e, "replica unreachable, trying another");
                    replica.ready.store(false, Ordering::Relaxed);
                }
                Ok(Err(e)) => {
                    tracing::warn!(replica = %replica.address, error = %e, "proxied request failed");
                    return unavailable();
                }
                Err(_) => {
                    return super::status::status(
                        StatusCode::GATEWAY_TIMEOUT,
                        "Timeout",
                        "the proxied request timed out",
                    );
                }
            }
        }
        unavailable()
    }

    /// Ready replicas, starting at the next in round-robin order.
    fn ready_in_turn(&self) -> Vec<Arc<Replica>> {
        let replicas = self.replicas.read().expect("replicas lock");
        let ready: Vec<_> = replicas.iter().filter(|r| r.is_ready()).cloned().collect();
        if ready.is_empty() {
            return ready;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
        ready[start..].iter().chain(&ready[..start]).cloned().collect()
    }
}

/// kube-aggregator's answer when the APIService has no available endpoint.
pub fn unavailable() -> Response<Body> {
    text(StatusCode::SERVICE_UNAVAILABLE, "service unavailable\n")
}

fn upstream_request(
    parts: &http::request::Parts,
    address: &str,
    user: &UserInfo,
    body: bytes::Bytes,
) -> Result<http::Request<Body>, String> {
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut req = http::Request::builder()
        .method(parts.method.clone())
        .uri(format!("https://{address}{path}"));
    for name in [header::ACCEPT, header::CONTENT_TYPE, header::USER_AGENT] {
        if let Some(v) = parts.headers.get(&name) {
            req = req.header(name, v.clone());
        }
    }
    req = req.header(
        "X-Remote-User",
        HeaderValue::from_str(&user.username).map_err(|e| e.to_string())?,
    );
    for group in &user.groups {
        req = req.header(
            "X-Remote-Group",
            HeaderValue::from_str(group).map_err(|e| e.to_string())?,
        );
    }
    if !user.uid.is_empty() {
        req = req.header(
            "X-Remote-Uid",
            HeaderValue::from_str(&user.uid).map_err(|e| e.to_string())?,
        );
    }
    for (key, values) in &user.extra {
        let name = format!(
            "X-Remote-Extra-{}",
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC)
        );
        for v in values {
            req = req.header(name.as_str(), HeaderValue::from_str(v).map_err(|e| e.to_string())?);
        }
    }
    req.body(crate::http::full(body)).map_err(|e| e.to_string())
}

/// Streams a replica's response back (status, content type, body).
fn relay(resp: Response<hyper::body::Incoming>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let body = body.map_err(std::io::Error::other).boxed_unsync();
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::WARNING,
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
