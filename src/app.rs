//! Wiring and shutdown order: Kubernetes client -> informers -> shard actors (all shards with
//! one replica; with peers, Raft and the peer channel decide which) -> HTTPS server; on SIGTERM:
//! readyz fails, the HTTP server drains in-flight requests, scrapers stop, exit.

use crate::auth::Auth;
use crate::auth::verifier::ClientChain;
use crate::config::Config;
use crate::health::Health;
use crate::informer::{self, Caches};
use crate::metrics::Metrics;
use crate::query::Reader;
use crate::web::{ReadinessSource, WebState, dispatch};
use actix_web::{App, HttpServer, web};
use shard::actor::{ShardContext, ShardSet};
use shard::parse::Limits;
use shard::scrape::AddressPolicy;
use shard::selector::LabelSelector;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tokio::sync::{Semaphore, watch};

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    crate::memory::spawn_trimmer();
    let kube = crate::kubeconfig::kube_config(&config).await?;
    let kubelets = crate::kubeconfig::kubelet_client(&config, &kube)?;
    let client = kube::Client::try_from(kube)?;
    let auth = crate::auth::start(&config, &client).await?;
    let caches = Arc::new(Caches::default());
    let (node_changes, node_rx) = watch::channel(0u64);
    informer::spawn(client, caches.clone(), node_changes);

    let metrics = Arc::new(Metrics::new(config.metric_resolution));
    let ha_cell = Arc::new(std::sync::OnceLock::new());
    let last_tick = Arc::new(AtomicI64::new(0));
    let shard_ctx = Arc::new(ShardContext {
        resolution: config.metric_resolution,
        limits: Limits::default(),
        client: kubelets,
        limiter: Arc::new(Semaphore::new(config.kubelet_max_concurrency)),
        observer: metrics.clone(),
        last_tick: last_tick.clone(),
        on_cycle: config
            .ha
            .enabled()
            .then(|| crate::ha::replicate::cycle_hook(ha_cell.clone())),
    });
    let shards = match config.ha.enabled() {
        true => Arc::new(ShardSet::idle(config.shards, shard_ctx)),
        false => Arc::new(ShardSet::start(config.shards, shard_ctx)),
    };
    let selector = LabelSelector::parse(&config.node_selector).map_err(|e| anyhow::anyhow!("--node-selector: {e}"))?;
    let policy = AddressPolicy {
        preferred_types: config.kubelet_preferred_address_types.clone(),
        port: config.kubelet_port,
        use_node_status_port: config.kubelet_use_node_status_port,
    };
    follow_nodes(caches.clone(), shards.clone(), node_rx, policy, selector.clone());

    let mut reader = Reader {
        caches,
        shards: shards.clone(),
        node_selector: selector,
        fanout: None,
    };
    if config.ha.enabled() {
        let ha = start_ha(&config, shards, metrics.clone(), &reader).await?;
        let _ = ha_cell.set(Arc::downgrade(&ha));
        reader.fanout = Some(ha);
    }
    let state = web::Data::new(WebState {
        reader: reader.clone(),
        health: Health {
            source: ReadinessSource { reader },
            resolution: config.metric_resolution,
            last_tick,
            shutting_down: Default::default(),
        },
        metrics,
        auth: auth.clone(),
        always_allow: config.authorization_always_allow_paths.clone(),
        inflight: Semaphore::new(config.max_requests_inflight),
        continue_token_lifetime: config.continue_token_lifetime,
    });
    serve(&config, state, &auth).await
}

/// Raft, the control loop and the peer channel's server.
async fn start_ha(
    config: &Config,
    shards: Arc<ShardSet>,
    metrics: Arc<Metrics>,
    reader: &Reader,
) -> anyhow::Result<Arc<crate::ha::Ha>> {
    let ha_config = &config.ha;
    let (cert, key, ca) = (
        &ha_config.peer_cert_file,
        &ha_config.peer_key_file,
        &ha_config.peer_ca_file,
    );
    let (Some(cert), Some(key), Some(ca)) = (cert, key, ca) else {
        anyhow::bail!("with --peers, --peer-cert-file, --peer-key-file and --peer-ca-file are required");
    };
    let tls = crate::peer::transport::PeerTls::load(cert, key, ca)?;
    let ha = crate::ha::start(config, shards, metrics, &tls).await?;
    let server = crate::ha::server::serve(ha.clone(), reader.clone(), (*tls.server).clone())?;
    tokio::spawn(server);
    Ok(ha)
}

/// Recomputes scrape targets whenever the node cache changes.
fn follow_nodes(
    caches: Arc<Caches>,
    shards: Arc<ShardSet>,
    mut changes: watch::Receiver<u64>,
    policy: AddressPolicy,
    selector: LabelSelector,
) {
    actix::spawn(async move {
        loop {
            {
                let nodes = caches.nodes.read().expect("nodes lock");
                shards.set_nodes(nodes.nodes.values(), &policy, &selector);
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    });
}

async fn serve(config: &Config, state: web::Data<WebState>, auth: &Auth) -> anyhow::Result<()> {
    let (tls, serving_cert) = crate::serve::tls::server_config(config, auth.dynamic().clone())?;
    serving_cert.spawn_watch();
    let shared = state.clone();
    let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(dispatch)))
        .on_connect(|conn, ext| {
            use actix_tls::accept::rustls_0_23::TlsStream;
            if let Some(tls) = conn.downcast_ref::<TlsStream<actix_web::rt::net::TcpStream>>() {
                let chain = tls.get_ref().1.peer_certificates().unwrap_or_default();
                ext.insert(Arc::new(ClientChain::new(
                    chain.iter().map(|c| c.clone().into_owned()).collect(),
                )));
            }
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(config.shutdown_grace_period.as_secs())
        .bind_rustls_0_23((config.bind_address.as_str(), config.secure_port), tls)?
        .run();
    let handle = server.handle();
    tracing::info!(address = %config.bind_address, port = config.secure_port, "serving the Metrics API");
    let server = tokio::spawn(server);
    wait_for_signal().await;
    tracing::info!("shutting down: readyz fails, then in-flight requests finish");
    state.health.shutting_down.store(true, Ordering::Relaxed);
    let leave = async {
        if let Some(ha) = &state.reader.fanout {
            ha.leave().await;
        }
    };
    tokio::join!(tokio::time::sleep(config.shutdown_delay_duration), leave);
    handle.stop(true).await;
    let _ = server.await;
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
