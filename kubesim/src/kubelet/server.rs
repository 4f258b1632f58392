//! One fake kubelet: an HTTPS listener on the node's address that serves `/metrics/resource`
//! from its [`Template`], obeying the fault it is switched into.

use super::faults::Fault;
use super::host::KubeletStats;
use super::render::{Mods, Template};
use crate::http::{Body, Request, serve_connection, text};
use crate::sim::Millis;
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{oneshot, watch};

/// A TLS handshake must finish within this long.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pending connections per kubelet listener.
pub const LISTEN_BACKLOG: u32 = 1024;
/// The kubelet's content type for the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// How long a truncated body stalls before its connection is dropped.
const TRUNCATE_AFTER: Duration = Duration::from_millis(100);
/// Chunk size of streamed oversized bodies.
const OVERSIZED_CHUNK: usize = 64 * 1024;

pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

#[derive(Debug, Clone)]
struct ActiveFault {
    fault: Fault,
    since: Millis,
}

pub struct Kubelet {
    pub node: String,
    pub addr: SocketAddr,
    metrics_path: String,
    token: super::host::SharedToken,
    tls: Arc<rustls::ServerConfig>,
    template: RwLock<Arc<Template>>,
    fault: watch::Sender<Option<ActiveFault>>,
    stop: watch::Sender<bool>,
    scrapes: AtomicU64,
    unauthorized: AtomicU64,
    last_scrape_ms: AtomicI64,
    /// Scrapes answered since the fault was last set ([`Fault::Replay`] picks its body by it).
    since_fault: AtomicU64,
}

impl Kubelet {
    pub fn new(
        node: String,
        addr: SocketAddr,
        metrics_path: String,
        token: super::host::SharedToken,
        tls: Arc<rustls::ServerConfig>,
    ) -> Arc<Self> {
        let empty = Template::build(&Default::default(), &placeholder_node(&node));
        Arc::new(Kubelet {
            node,
            addr,
            metrics_path,
            token,
            tls,
            template: RwLock::new(Arc::new(empty)),
            fault: watch::channel(None).0,
            stop: watch::channel(false).0,
            scrapes: AtomicU64::new(0),
            unauthorized: AtomicU64::new(0),
            last_scrape_ms: AtomicI64::new(0),
            since_fault: AtomicU64::new(0),
        })
    }

    pub fn set_template(&self, template: Template) {
        *self.template.write().expect("template lock") = Arc::new(template);
    }

    pub fn set_fault(&self, fault: Option<Fault>) {
        self.fault.send_modify(|active| {
            self.since_fault.store(0, Ordering::Relaxed);
            *active = fault.map(|fault| ActiveFault { fault, since: now_ms() });
        });
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn stats(&self) -> KubeletStats {
        KubeletStats {
            address: self.addr,
            scrapes: self.scrapes.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            last_scrape_ms: self.last_scrape_ms.load(Ordering::Relaxed),
            fault: self.fault.borrow().as_ref().map(|f| f.fault.clone()),
        }
    }

    pub fn render(&self, ts: Millis, mods: &Mods) -> Vec<u8> {
        let template = self.template.read().expect("template lock").clone();
        let mut out = Vec::with_capacity(256 + template.container_count() * 600);
        template.render(ts, mods, &mut out);
        out
    }

    /// Starts the listener task; the receiver says whether the first bind worked.
    pub fn spawn(self: Arc<Self>) -> oneshot::Receiver<std::io::Result<()>> {
        let (tx, rx) = oneshot::channel();
        tokio::spawn(self.run(tx));
        rx
    }

    fn refused(&self) -> bool {
        matches!(
            self.fault.borrow().as_ref(),
            Some(ActiveFault {
                fault: Fault::ConnectionRefused,
                ..
            })
        )
    }

    async fn run(self: Arc<Self>, ready: oneshot::Sender<std::io::Result<()>>) {
        let mut ready = Some(ready);
        let mut faults = self.fault.subscribe();
        let mut stop = self.stop.subscribe();
        loop {
            if *stop.borrow() {
                return;
            }
            if self.refused() {
                ready.take().map(|r| r.send(Ok(())));
                tokio::select! {
                    _ = faults.changed() => continue,
                    _ = stop.changed() => return,
                }
            }
            let listener = match bind(self.addr) {
                Ok(l) => l,
                Err(e) => match ready.take() {
                    Some(r) => return drop(r.send(Err(e))),
                    None => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            ready.take().map(|r| r.send(Ok(())));
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            tokio::spawn(self.clone().connection(stream));
                        }
                    }
                    _ = faults.changed() => if self.refused() { break },
                    _ = stop.changed() => return,
                }
            }
        }
    }

    async fn connection(self: Arc<Self>, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let mut stop = self.stop.subscribe();
        let hang = matches!(
            self.fault.borrow().as_ref(),
            Some(ActiveFault { fault: Fault::Hang, .. })
        );
        if hang {
            tokio::select! { _ = hold(stream) => {}, _ = stop.changed() => {} }
            return;
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        let Ok(Ok(tls)) = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await else {
            return;
        };
        let client_cert = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
        let me = self.clone();
        let serve = serve_connection(tls, move |req| {
            let me = me.clone();
            async move { me.handle(req, client_cert).await }
        });
        // A kubelet that goes down drops its open connections too, not only its listener.
        let mut faults = self.fault.subscribe();
        let refused = async {
            while faults.changed().await.is_ok() {
                if self.refused() {
                    return;
                }
            }
            std::future::pending::<()>().await
        };
        tokio::select! { _ = serve => {}, _ = stop.changed() => {}, _ = refused => {} }
    }

    /// Waits while the kubelet is switched to `Hang` (requests on open connections hang too).
    async fn wait_while_hung(&self) {
        let mut faults = self.fault.subscribe();
        while matches!(
            faults.borrow_and_update().as_ref(),
            Some(ActiveFault { fault: Fault::Hang, .. })
        ) {
            if faults.changed().await.is_err() {
                return;
            }
        }
    }

    fn authorized(&self, req: &Request, client_cert: bool) -> bool {
        let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        client_cert
            || bearer
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|t| *t == *self.token.read().expect("token lock"))
    }

    async fn handle(&self, req: Request, client_cert: bool) -> Response<Body> {
        let path = req.uri().path();
        if path == "/healthz" {
            return text(StatusCode::OK, "ok");
        }
        if path != self.metrics_path {
            return text(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        if !self.authorized(&req, client_cert) {
            self.unauthorized.fetch_add(1, Ordering::Relaxed);
            return text(StatusCode::UNAUTHORIZED, "Unauthorized");
        }
        if req.method() != http::Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed\n");
        }
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        let now = now_ms();
        self.last_scrape_ms.store(now, Ordering::Relaxed);
        let active = self.fault.borrow().clone();
        let nth = self.since_fault.fetch_add(1, Ordering::Relaxed);
        if let Some(ActiveFault {
            fault: Fault::Replay { bodies },
            ..
        }) = &active
        {
            let body = bodies.get(nth as usize).or(bodies.last()).cloned().unwrap_or_default();
            return metrics(body.into_bytes());
        }
        self.faulty_response(active, now).await
    }

    async fn faulty_response(&self, active: Option<ActiveFault>, now: Millis) -> Response<Body> {
        let mut mods = Mods::default();
        let mut ts = stats_time(now);
        let Some(ActiveFault { fault, since }) = active else {
            return metrics(self.render(ts, &mods));
        };
        match fault {
            Fault::ConnectionRefused => {}
            Fault::Hang => self.wait_while_hung().await,
            Fault::Slow { delay_ms } => tokio::time::sleep(Duration::from_millis(delay_ms)).await,
            Fault::Http500 => {
                let msg = format!(
                    "Internal Server Error: \"{}\": failed to get stats\n",
                    self.metrics_path
                );
                return text(StatusCode::INTERNAL_SERVER_ERROR, msg);
            }
            Fault::Garbage => return metrics(garbage(&self.node, now)),
            Fault::Truncated => return truncated(self.render(ts, &mods)),
            Fault::Oversized { bytes } => return oversized(bytes, now),
            Fault::MissingSeries { families } => mods.missing = families,
            Fault::ZeroValues => mods.zero_values = true,
            Fault::CounterBackwards { factor } => mods.cpu_factor = Some(factor),
            Fault::StaleStats => ts = since,
            Fault::TimestampsBackwards { by_ms } => ts = now - by_ms,
            Fault::TimestampsAhead { by_ms } => ts = now + by_ms,
            Fault::Replay { .. } => unreachable!("replays are answered before the simulation renders"),
        }
        metrics(self.render(ts, &mods))
    }
}

/// How often a node's stats are refreshed. A real kubelet serves cAdvisor's last housekeeping
/// sample (every 10-15 s) with that sample's timestamp, so two scrapes between refreshes see the
/// same timestamp and the same values. kubesim refreshes every second: the second-precision
/// timestamp the Metrics API serves then identifies the values, as it does in a real cluster.
pub const STATS_REFRESH_MS: Millis = 1000;

/// The time of the stats sample a scrape at `now` sees.
pub fn stats_time(now: Millis) -> Millis {
    now - now.rem_euclid(STATS_REFRESH_MS)
}

fn placeholder_node(name: &str) -> crate::sim::model::NodeState {
    use crate::sim::model::NodeState;
    use crate::sim::{NodeSpec, Profile};
    NodeState::new(NodeSpec {
        name: name.to_string(),
        ip: std::net::Ipv4Addr::LOCALHOST,
        kubelet_port: 0,
        labels: Default::default(),
        annotations: Default::default(),
        cpu_capacity_millis: 0,
        memory_capacity_bytes: 0,
        max_pods: 0,
        created: 0,
        boot: 0,
        system_cpu: Profile::Constant { value: 0.0 },
        system_memory: Profile::Constant { value: 0.0 },
        swap: false,
    })
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Reads and discards until the peer closes: an accepted connection that never answers.
async fn hold(mut stream: TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

fn metrics(body: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(crate::http::full(body));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}

/// A body that is not the exposition format: binary noise, broken lines, stray braces.
fn garbage(node: &str, now: Millis) -> Vec<u8> {
    let mut rng = crate::sim::rng::Rng::new(now as u64 ^ node.len() as u64);
    let mut out = b"<html>\x00\xff\xfe not metrics {{{ \"\n".to_vec();
    for _ in 0..4096 {
        out.push(rng.next_u64() as u8);
    }
    out.extend_from_slice(b"\ncontainer_cpu_usage_seconds_total{container=\"x\" 1.2.3 abc\n}}}\n");
    out
}

/// Announces the whole body's length, sends half, then fails the stream (the connection drops).
fn truncated(body: Vec<u8>) -> Response<Body> {
    let len = body.len();
    let half = Bytes::from(body).slice(..len / 2);
    let frames = futures::stream::unfold(Some(half), |half| async move {
        match half {
            Some(half) => Some((Ok(Frame::data(half)), None)),
            None => {
                // Let the head and the first half reach the client before the connection drops.
                tokio::time::sleep(TRUNCATE_AFTER).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "truncated by fault",
                    )),
                    None,
                ))
            }
        }
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames.boxed())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len as u64));
    resp
}

/// `bytes` of well-formed series, streamed in chunks without a length.
fn oversized(bytes: u64, now: Millis) -> Response<Body> {
    let header = "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n";
    let chunks = futures::stream::unfold((0u64, 0u64), move |(sent, line)| async move {
        if sent >= bytes {
            return None;
        }
        let mut chunk = Vec::with_capacity(OVERSIZED_CHUNK + 256);
        if sent == 0 {
            chunk.extend_from_slice(header.as_bytes());
        }
        let mut line = line;
        while chunk.len() < OVERSIZED_CHUNK && sent + (chunk.len() as u64) < bytes {
            let row = format!(
                "container_cpu_usage_seconds_total{{container=\"c\",namespace=\"padding\",pod=\"pad-{line}\"}} 1 {now}\n"
            );
            chunk.extend_from_slice(row.as_bytes());
            line += 1;
        }
        let n = chunk.len() as u64;
        Some((Ok(Frame::data(Bytes::from(chunk))), (sent + n, line)))
    });
    let mut resp = Response::new(BodyExt::boxed_unsync(StreamBody::new(chunks.boxed())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}
