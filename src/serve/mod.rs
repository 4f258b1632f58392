//! Serving the Metrics API over HTTPS: the TLS configuration and the reloadable serving
//! certificate, the listener (HTTP/2 and HTTP/1.1, graceful shutdown with GOAWAY), the bridge
//! that hands each request to the actix-web application, and the shutdown sequence ([`run`]).
//! What a request gets is `crate::web`'s business; who the caller is and what it may do live in
//! [`crate::auth`].

pub mod bridge;
pub mod listener;
pub mod reload;
pub mod tls;

use crate::auth::cas::DynamicAuthn;
use crate::config::Config;
use listener::{ApiServer, ListenConfig, MakeApp};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Serves `make_app` until SIGTERM, then shuts down as the kube-aggregator needs it:
/// 1. readyz fails at once (`shutting_down`, read by the `shutdown` check), so the kubelet's
///    readiness probe takes the replica out of the Service's ready endpoints and the
///    aggregator stops picking it;
/// 2. for `--shutdown-delay-duration` every request is still served as before, new
///    connections too: the aggregator (and kube-proxy) learn of the endpoint change only after
///    the probe fails and the endpoints propagate, and requests sent meanwhile must not fail;
///    `leave` runs meanwhile (with peers, this replica leaves the replica set: its shards move);
/// 3. the listener stops accepting and sends GOAWAY on HTTP/2 connections (HTTP/1.1 ones close
///    after their request), so clients open new connections to other replicas instead of
///    keeping a dead one until their ping timeout;
/// 4. in-flight requests finish, at most `--shutdown-grace-period`; then the process exits.
pub async fn run(
    config: &Config,
    make_app: MakeApp,
    dynamic: Arc<DynamicAuthn>,
    shutting_down: &AtomicBool,
    leave: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (tls, serving_cert) = tls::server_config(config, dynamic)?;
    serving_cert.spawn_watch();
    let ip: std::net::IpAddr = config
        .bind_address
        .parse()
        .map_err(|_| anyhow::anyhow!("--bind-address {:?} is not an IP address", config.bind_address))?;
    let listen = ListenConfig {
        addr: std::net::SocketAddr::new(ip, config.secure_port),
        http2: !config.disable_http2_serving,
        http2_max_streams: config.http2_max_streams_per_connection,
        workers: config.api_workers(),
    };
    let server = ApiServer::start(listen.clone(), tls, make_app).await?;
    tracing::info!(address = %server.local_addr(), http2 = listen.http2, "serving the Metrics API");
    let restart = tokio::select! {
        _ = wait_for_signal() => None,
        args = crate::listeners::restart_requested() => Some(args),
    };
    if let Some(args) = restart {
        // The listening socket stays open (`crate::listeners`): stop accepting, finish what is
        // in flight, and the new image accepts what queued meanwhile.
        tracing::info!("restarting in place: draining in-flight requests first");
        let left = server.shutdown(config.shutdown_grace_period).await;
        if left > 0 {
            tracing::warn!(connections = left, "grace period over with connections still open");
        }
        crate::listeners::exec(args);
    }
    tracing::info!(delay = ?config.shutdown_delay_duration, "shutting down: readyz fails, requests are still served during the delay");
    shutting_down.store(true, Ordering::Relaxed);
    tokio::join!(tokio::time::sleep(config.shutdown_delay_duration), leave);
    tracing::info!("shutdown delay over: GOAWAY to HTTP/2 clients, draining in-flight requests");
    let left = server.shutdown(config.shutdown_grace_period).await;
    if left > 0 {
        tracing::warn!(connections = left, "grace period over with connections still open");
    }
    actix::System::current().stop();
    Ok(())
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
