//! The aggregation proxy for `/apis/metrics.k8s.io/*`, as kube-aggregator does it with
//! `--enable-aggregator-routing=true`:
//!
//! - each request goes to **one ready endpoint picked at random** (the aggregator resolves the
//!   Service's ready endpoints and picks one per request), over HTTPS with the front-proxy client
//!   certificate and `X-Remote-User` / `X-Remote-Group` headers (the caller's own credentials
//!   removed), keeping path, query and Accept;
//! - over **HTTP/2** when the endpoint offers it in ALPN (Go's transport offers `h2` and
//!   `http/1.1`), one multiplexed connection per endpoint, with Go's HTTP/2 health check (a PING
//!   after [`H2_READ_IDLE`] without frames, the connection dropped [`H2_PING_TIMEOUT`] later);
//! - **no retry** on another endpoint: a request whose endpoint fails (refused, reset, GOAWAY
//!   before an answer) gets `503` with the error text, as the aggregator's proxy responder
//!   answers; no ready endpoint at all gets `503 service unavailable`;
//! - an endpoint is ready as the kubelet's **readiness probe** says: `GET /readyz` over HTTPS
//!   without credentials, every [`ProbeConfig::period`], each within [`ProbeConfig::timeout`];
//!   not ready until its first success, not ready again after
//!   [`ProbeConfig::failure_threshold`] failures in a row (a StatefulSet's `readinessProbe`).
//!   Endpoints leave at once when they are removed (`set_replicas`: the pod was deleted).

use super::auth::UserInfo;
use crate::http::{Body, Request, text};
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use shard::scrape::client::error_chain;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How the readiness probe runs (a container's `readinessProbe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeConfig {
    /// `periodSeconds`.
    pub period: Duration,
    /// `timeoutSeconds`.
    pub timeout: Duration,
    /// `failureThreshold`: consecutive failures that make a ready endpoint not ready.
    pub failure_threshold: u32,
}

/// Default probe: every second, one second to answer, three failures (the manifests' probe is
/// 10 s x 3; kubesim runs it faster so clusters settle in seconds).
pub const DEFAULT_PROBE: ProbeConfig = ProbeConfig {
    period: Duration::from_secs(1),
    timeout: Duration::from_secs(1),
    failure_threshold: 3,
};
/// A proxied request fails after this long (kube-aggregator's default proxy timeout is 60 s).
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(60);
/// Go's HTTP/2 health check as the aggregator's transport sets it: a PING after this long
/// without a frame from the endpoint, and the connection closed if none comes back within
/// [`H2_PING_TIMEOUT`].
pub const H2_READ_IDLE: Duration = Duration::from_secs(30);
pub const H2_PING_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest request body forwarded.
pub const MAX_PROXY_BODY: usize = 1024 * 1024;
/// The probe's User-Agent, as the kubelet sends it.
const PROBE_USER_AGENT: &str = "kube-probe/1.32";

/// A registered replica (an endpoint of the APIService's Service) and its probe state.
#[derive(Debug)]
pub struct Replica {
    pub address: String,
    probe: Mutex<ProbeState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct ProbeState {
    ready: bool,
    /// Consecutive failed probes.
    failures: u32,
}

impl Replica {
    fn new(address: &str) -> Arc<Replica> {
        Arc::new(Replica {
            address: address.to_string(),
            probe: Mutex::new(ProbeState::default()),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.probe.lock().expect("probe lock").ready
    }

    /// Applies one probe result; returns the readiness if it changed.
    fn record(&self, success: bool, threshold: u32) -> Option<bool> {
        let mut state = self.probe.lock().expect("probe lock");
        let before = state.ready;
        if success {
            *state = ProbeState {
                ready: true,
                failures: 0,
            }
        } else {
            state.failures += 1;
            if state.failures >= threshold.max(1) {
                state.ready = false;
            }
        }
        (state.ready != before).then_some(state.ready)
    }
}

pub struct Proxy {
    replicas: RwLock<Vec<Arc<Replica>>>,
    /// To the endpoints: front-proxy certificate, HTTP/2 or HTTP/1.1 by ALPN.
    client: Client<HttpsConnector<HttpConnector>, Body>,
    /// The kubelet's prober: no credentials, a new connection per probe.
    prober: Client<HttpsConnector<HttpConnector>, Body>,
    probe: ProbeConfig,
    pick: Mutex<crate::sim::rng::Rng>,
}

impl Proxy {
    /// A proxy presenting `client_config`'s front-proxy certificate, probing with `probe`.
    pub fn new(client_config: rustls::ClientConfig, probe: ProbeConfig) -> anyhow::Result<Arc<Proxy>> {
        let seed = crate::kubelet::server::now_ms() as u64 ^ std::process::id() as u64;
        Ok(Arc::new(Proxy {
            replicas: RwLock::new(Vec::new()),
            client: endpoint_client(client_config),
            prober: probe_client(crate::tls::insecure_client(None)?),
            probe,
            pick: Mutex::new(crate::sim::rng::Rng::new(seed)),
        }))
    }

    pub fn probe_config(&self) -> ProbeConfig {
        self.probe
    }

    /// Replaces the set of replicas (`host:port`); ones already known keep their probe state.
    /// Returns the new ones (not ready until their first successful probe).
    pub fn set_replicas(&self, addresses: &[String]) -> Vec<Arc<Replica>> {
        let mut replicas = self.replicas.write().expect("replicas lock");
        let old = std::mem::take(&mut *replicas);
        let mut added = Vec::new();
        *replicas = addresses
            .iter()
            .map(|a| {
                old.iter().find(|r| &r.address == a).cloned().unwrap_or_else(|| {
                    let r = Replica::new(a);
                    added.push(r.clone());
                    r
                })
            })
            .collect();
        added
    }

    pub fn replicas(&self) -> Vec<(String, bool)> {
        self.replicas
            .read()
            .expect("replicas lock")
            .iter()
            .map(|r| (r.address.clone(), r.is_ready()))
            .collect()
    }

    /// Probes every replica every period, until the process ends.
    pub fn spawn_probes(self: &Arc<Self>) {
        let me = Arc::downgrade(self);
        let period = self.probe.period;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let replicas = me.replicas.read().expect("replicas lock").clone();
                // Each probe on its own: a hanging one must not delay the others' periods.
                for r in replicas {
                    let me = me.clone();
                    tokio::spawn(async move { me.probe_one(&r).await });
                }
            }
        });
    }

    /// One probe of each of `replicas`, all at once (a new endpoint is probed when it appears).
    pub async fn probe_now(&self, replicas: &[Arc<Replica>]) {
        futures::future::join_all(replicas.iter().map(|r| self.probe_one(r))).await;
    }

    async fn probe_one(&self, replica: &Replica) {
        let success = self.probe(&replica.address).await;
        if let Some(ready) = replica.record(success, self.probe.failure_threshold) {
            tracing::info!(replica = %replica.address, ready, "replica readiness changed");
        }
    }

    async fn probe(&self, address: &str) -> bool {
        let Ok(req) = http::Request::get(format!("https://{address}/readyz"))
            .header(header::USER_AGENT, PROBE_USER_AGENT)
            .body(crate::http::empty())
        else {
            return false;
        };
        let call = async {
            let resp = self.prober.request(req).await?;
            let status = resp.status();
            let _ = resp.into_body().collect().await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.probe.timeout, call).await {
            Ok(Ok(status)) => status.is_success() || status.is_redirection(),
            Ok(Err(e)) => {
                tracing::debug!(replica = address, error = %e, "readiness probe failed");
                false
            }
            Err(_) => false,
        }
    }

    /// Forwards `req` for `user` to one ready replica, picked at random; never retried elsewhere.
    pub async fn forward(&self, req: Request, user: &UserInfo) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let Some(body) = crate::http::read_body(body, MAX_PROXY_BODY).await else {
            return super::status::status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "request body too large",
            );
        };
        let Some(replica) = self.pick_ready() else {
            return unavailable();
        };
        let upstream = match upstream_request(&parts, &replica.address, user, body) {
            Ok(r) => r,
            Err(e) => return super::status::bad_request(&e),
        };
        match tokio::time::timeout(PROXY_TIMEOUT, self.client.request(upstream)).await {
            Ok(Ok(resp)) => relay(resp),
            Ok(Err(e)) => {
                tracing::warn!(replica = %replica.address, error = %e, "error while proxying request");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("error trying to reach service: {}\n", error_chain(&e)),
                )
            }
            Err(_) => super::status::status(StatusCode::GATEWAY_TIMEOUT, "Timeout", "the proxied request timed out"),
        }
    }

    /// A ready replica chosen uniformly at random, if any.
    fn pick_ready(&self) -> Option<Arc<Replica>> {
        let replicas = self.replicas.read().expect("replicas lock");
        let ready: Vec<&Arc<Replica>> = replicas.iter().filter(|r| r.is_ready()).collect();
        if ready.is_empty() {
            return None;
        }
        let i = self.pick.lock().expect("pick lock").below(ready.len() as u64) as usize;
        Some(ready[i].clone())
    }
}

/// The aggregator's transport to endpoints: ALPN h2 and http/1.1, one pooled connection per
/// endpoint for HTTP/2, Go's HTTP/2 health check.
fn endpoint_client(config: rustls::ClientConfig) -> Client<HttpsConnector<HttpConnector>, Body> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_all_versions()
        .wrap_connector(http);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .http2_keep_alive_interval(H2_READ_IDLE)
        .http2_keep_alive_timeout(H2_PING_TIMEOUT)
        .build(connector)
}

/// The kubelet's HTTP prober: HTTP/1.1, no keep-alive.
fn probe_client(config: rustls::ClientConfig) -> Client<HttpsConnector<HttpConnector>, Body> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build(connector)
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
