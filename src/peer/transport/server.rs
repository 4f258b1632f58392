//! The peer channel's listener: actix-web on `--peer-port` behind mutual TLS (a client without a
//! certificate from the peer CA never reaches a route), keeping idle connections longer than the
//! client does. The routes are given by the caller (`crate::ha::routes`).

use actix_web::{App, HttpServer, web};

/// Where and how the peer channel listens.
pub struct Listen {
    pub bind: String,
    pub port: u16,
    pub tls: rustls::ServerConfig,
    /// Worker threads (`--peer-workers`).
    pub workers: usize,
}

/// Binds the peer listener with `routes` on every worker; the returned server runs when awaited
/// or spawned. It ignores signals: the Metrics API's shutdown decides when a replica leaves.
pub fn serve<F>(listen: Listen, routes: F) -> anyhow::Result<actix_web::dev::Server>
where
    F: Fn(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let Listen {
        bind,
        port,
        tls,
        workers,
    } = listen;
    let listener = crate::listeners::listen(&format!("{bind}:{port}"), (bind.as_str(), port))?;
    let server = HttpServer::new(move || App::new().configure(routes.clone()))
        .workers(workers)
        .keep_alive(super::PEER_SERVER_KEEP_ALIVE)
        .disable_signals()
        .shutdown_timeout(1)
        .listen_rustls_0_23(listener, tls)?
        .run();
    tracing::info!(address = %bind, port, "serving the peer channel");
    Ok(server)
}
