//! The Metrics API listener: TCP accept, TLS (rustls, reloadable certificate), then HTTP/2 or
//! HTTP/1.1 as ALPN chose (hyper), each request run by the actix-web application on one of
//! `--api-workers` actix arbiters (its handlers are not `Send`).
//!
//! HTTP/2 is what kube-aggregator speaks to aggregated servers; `--disable-http2-serving`
//! leaves HTTP/1.1 only, and `--http2-max-streams-per-connection` is the stream limit announced
//! in SETTINGS (0: Go's default of 250, as in the generic apiserver).
//!
//! [`ApiServer::shutdown`] ends the aggregator-aware shutdown ([`super::run`]): it stops
//! accepting, asks every connection to finish (HTTP/2: GOAWAY, so the client sends no new
//! stream on it and opens a new connection elsewhere; HTTP/1.1: in-flight requests are
//! answered with `Connection: close`, idle connections close), and waits for them, at most the
//! grace period.

use super::bridge::{self, AppService, Peer};
use crate::auth::verifier::ClientChain;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};

/// Connections open at once; past this, accepting waits for one to close. Each costs a file
/// descriptor, and kubelet and peer connections need most of the ~19,000 a process may hold.
pub const MAX_CONNECTIONS: usize = 2048;
/// A TLS handshake must finish within this long.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/1.1: a request's headers must arrive within this long, which is also how long an idle
/// keep-alive connection is kept.
pub const HTTP1_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2: a PING every this long on a connection; no answer within [`HTTP2_PING_TIMEOUT`]
/// closes it (a client that vanished without closing).
pub const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(30);
pub const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(15);
/// Go's `http2.Server` default stream limit, used when `--http2-max-streams-per-connection=0`.
pub const GO_DEFAULT_MAX_STREAMS: u32 = 250;
/// Largest HTTP/2 header list accepted; above the web layer's own cap
/// (`crate::web::limits::MAX_REQUEST_HEADER_BYTES`), so it, not hyper, answers with a Status.
pub const HTTP2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// How the listener serves.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    pub addr: SocketAddr,
    pub http2: bool,
    /// Streams per HTTP/2 connection (0: [`GO_DEFAULT_MAX_STREAMS`]).
    pub http2_max_streams: u32,
    /// Arbiters (threads) running the application, as actix-web's workers did
    /// (`--api-workers`).
    pub workers: usize,
}

/// Builds the application, once per worker.
pub type MakeApp = Arc<
    dyn Fn() -> actix_service::boxed::BoxServiceFactory<
            actix_web::dev::AppConfig,
            actix_http::Request,
            actix_web::dev::ServiceResponse<actix_http::body::BoxBody>,
            actix_web::Error,
            (),
        > + Send
        + Sync,
>;

/// A running listener.
pub struct ApiServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    /// Dropped by each connection when it ends; all gone means drained.
    open: mpsc::Receiver<()>,
    guard: Option<mpsc::Sender<()>>,
    active: Arc<AtomicUsize>,
}

/// What one accepted connection carries to its worker.
struct Accepted {
    tcp: TcpStream,
    addr: SocketAddr,
    permit: tokio::sync::OwnedSemaphorePermit,
    guard: mpsc::Sender<()>,
}

impl ApiServer {
    /// Binds and starts serving; call from inside the actix system.
    pub async fn start(
        config: ListenConfig,
        mut tls: rustls::ServerConfig,
        make_app: MakeApp,
    ) -> std::io::Result<ApiServer> {
        tls.alpn_protocols = if config.http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::from_std(crate::listeners::listen(&config.addr.to_string(), config.addr)?)?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (guard, open) = mpsc::channel(1);
        let active = Arc::new(AtomicUsize::new(0));
        let workers: Vec<mpsc::UnboundedSender<Accepted>> = (0..config.workers.max(1))
            .map(|_| {
                spawn_worker(
                    make_app.clone(),
                    acceptor.clone(),
                    config.clone(),
                    stopped.clone(),
                    active.clone(),
                )
            })
            .collect();
        tokio::spawn(accept_loop(listener, workers, guard.clone(), stopped));
        Ok(ApiServer {
            local_addr,
            stop,
            open,
            guard: Some(guard),
            active,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, asks every connection to finish, and waits for them (at most `grace`).
    /// Returns how many were still open when the grace period ended.
    pub async fn shutdown(mut self, grace: Duration) -> usize {
        let _ = self.stop.send(true);
        self.guard = None;
        let drained = tokio::time::timeout(grace, self.open.recv()).await.is_ok();
        if drained {
            0
        } else {
            self.active.load(Ordering::Relaxed)
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    workers: Vec<mpsc::UnboundedSender<Accepted>>,
    guard: mpsc::Sender<()>,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut next = 0usize;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("never closed"),
            _ = until_true(&mut stopped) => return,
        };
        let (tcp, addr) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a Metrics API connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = until_true(&mut stopped) => return,
        };
        let _ = tcp.set_nodelay(true);
        let accepted = Accepted {
            tcp,
            addr,
            permit,
            guard: guard.clone(),
        };
        let _ = workers[next % workers.len()].send(accepted);
        next = next.wrapping_add(1);
    }
}

/// An actix arbiter that builds the application and serves the connections sent to it.
fn spawn_worker(
    make_app: MakeApp,
    acceptor: tokio_rustls::TlsAcceptor,
    config: ListenConfig,
    stopped: watch::Receiver<bool>,
    active: Arc<AtomicUsize>,
) -> mpsc::UnboundedSender<Accepted> {
    let (tx, rx) = mpsc::unbounded_channel::<Accepted>();
    let arbiter = actix::Arbiter::new();
    // The closure is `Send`; the future it spawns on the arbiter's own thread need not be.
    arbiter.spawn_fn(move || {
        actix::spawn(run_worker(make_app, acceptor, config, stopped, active, rx));
    });
    tx
}

async fn run_worker(
    make_app: MakeApp,
    acceptor: tokio_rustls::TlsAcceptor,
    config: ListenConfig,
    stopped: watch::Receiver<bool>,
    active: Arc<AtomicUsize>,
    mut rx: mpsc::UnboundedReceiver<Accepted>,
) {
    {
        use actix_service::ServiceFactory;
        let app: Rc<AppService> = match make_app().new_service(actix_web::dev::AppConfig::default()).await {
            Ok(app) => Rc::new(app),
            Err(()) => {
                tracing::error!("the Metrics API application did not start");
                return;
            }
        };
        while let Some(conn) = rx.recv().await {
            let (app, acceptor, config, stopped, active) = (
                app.clone(),
                acceptor.clone(),
                config.clone(),
                stopped.clone(),
                active.clone(),
            );
            actix::spawn(async move {
                active.fetch_add(1, Ordering::Relaxed);
                serve_connection(conn.tcp, conn.addr, app, acceptor, &config, stopped).await;
                active.fetch_sub(1, Ordering::Relaxed);
                drop((conn.permit, conn.guard));
            });
        }
    }
}

async fn serve_connection(
    tcp: TcpStream,
    addr: SocketAddr,
    app: Rc<AppService>,
    acceptor: tokio_rustls::TlsAcceptor,
    config: &ListenConfig,
    stopped: watch::Receiver<bool>,
) {
    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return tracing::debug!(%addr, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%addr, "TLS handshake timed out"),
    };
    let (_, session) = tls.get_ref();
    let h2 = session.alpn_protocol() == Some(b"h2");
    let chain = session.peer_certificates().unwrap_or_default();
    let peer = Peer {
        addr,
        chain: Arc::new(ClientChain::new(chain.iter().map(|c| c.clone().into_owned()).collect())),
    };
    let service = hyper::service::service_fn(move |req| {
        let (app, peer) = (app.clone(), peer.clone());
        async move { Ok::<_, std::convert::Infallible>(bridge::call(&app, req, &peer).await) }
    });
    let io = TokioIo::new(tls);
    let result = if h2 {
        let max = match config.http2_max_streams {
            0 => GO_DEFAULT_MAX_STREAMS,
            n => n,
        };
        let conn = hyper::server::conn::http2::Builder::new(LocalExec)
            .timer(TokioTimer::new())
            .max_concurrent_streams(max)
            .max_header_list_size(HTTP2_MAX_HEADER_LIST_BYTES)
            .keep_alive_interval(HTTP2_PING_INTERVAL)
            .keep_alive_timeout(HTTP2_PING_TIMEOUT)
            .serve_connection(io, service);
        until_stopped(conn, stopped, |c| c.graceful_shutdown()).await
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HTTP1_HEADER_TIMEOUT)
            .keep_alive(true)
            .serve_connection(io, service);
        until_stopped(conn, stopped, |c| c.graceful_shutdown()).await
    };
    if let Err(e) = result {
        tracing::debug!(%addr, h2, error = %e, "Metrics API connection ended with an error");
    }
}

/// Drives `conn` to its end; once `stopped` turns true, asks it to finish gracefully first.
async fn until_stopped<C, E>(
    conn: C,
    mut stopped: watch::Receiver<bool>,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), E>
where
    C: std::future::Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => return r,
        _ = until_true(&mut stopped) => {}
    }
    graceful(conn.as_mut());
    conn.await
}

/// Returns once the stop flag is set (or its sender is gone: the server handle was dropped).
async fn until_true(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

/// Runs HTTP/2 stream tasks on the current actix arbiter (the application is not `Send`).
#[derive(Clone, Copy)]
struct LocalExec;

impl<F> hyper::rt::Executor<F> for LocalExec
where
    F: std::future::Future + 'static,
{
    fn execute(&self, fut: F) {
        actix::spawn(async move {
            fut.await;
        });
    }
}
