//! Wiring and shutdown order: Kubernetes client -> informers -> shard actors (all shards with
//! one replica; with peers, Raft and the peer channel decide which) -> HTTPS server (HTTP/2 and
//! HTTP/1.1); on SIGTERM: readyz fails, requests are served for `--shutdown-delay-duration`,
//! GOAWAY, in-flight requests drain, exit (see [`serve`]).

use crate::auth::Auth;
use crate::config::Config;
use crate::health::Health;
use crate::informer::{self, Caches};
use crate::metrics::Metrics;
use crate::query::Reader;
use crate::serve::listener::{ApiServer, ListenConfig, MakeApp};
use crate::web::{ReadinessSource, WebState, dispatch};
use actix_web::{App, web};
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
        publisher: config
            .ha
            .enabled()
            .then(|| Arc::new(crate::ha::replicate::Hook(ha_cell.clone())) as Arc<dyn shard::actor::Publisher>),
        shard_count: config.shards,
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
    tls.spawn_watch();
    let ha = crate::ha::start(config, shards, metrics, &tls).await?;
    let server = crate::ha::server::serve(ha.clone(), reader.clone(), (*tls.server).clone(), config.peer_workers())?;
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

/// Serves the Metrics API until SIGTERM, then shuts down as the kube-aggregator needs it:
/// 1. readyz fails at once (the `shutdown` check), so the kubelet's readiness probe takes the
///    replica out of the Service's ready endpoints and the aggregator stops picking it;
/// 2. for `--shutdown-delay-duration` every request is still served as before, new
///    connections too: the aggregator (and kube-proxy) learn of the endpoint change only after
///    the probe fails and the endpoints propagate, and requests sent meanwhile must not fail;
///    with peers, this replica leaves the replica set meanwhile (its shards move);
/// 3. the listener stops accepting and sends GOAWAY on HTTP/2 connections (HTTP/1.1 ones close
///    after their request), so clients open new connections to other replicas instead of
///    keeping a dead one until their ping timeout;
/// 4. in-flight requests finish, at most `--shutdown-grace-period`; then the process exits.
async fn serve(config: &Config, state: web::Data<WebState>, auth: &Auth) -> anyhow::Result<()> {
    let (tls, serving_cert) = crate::serve::tls::server_config(config, auth.dynamic().clone())?;
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
    let shared = state.clone();
    let make_app: MakeApp = Arc::new(move || {
        use actix_service::IntoServiceFactory;
        let app = App::new().app_data(shared.clone()).default_service(web::to(dispatch));
        actix_service::boxed::factory(app.into_factory())
    });
    let server = ApiServer::start(listen.clone(), tls, make_app).await?;
    tracing::info!(address = %server.local_addr(), http2 = listen.http2, "serving the Metrics API");
    wait_for_signal().await;
    tracing::info!(delay = ?config.shutdown_delay_duration, "shutting down: readyz fails, requests are still served during the delay");
    state.health.shutting_down.store(true, Ordering::Relaxed);
    let leave = async {
        if let Some(ha) = &state.reader.fanout {
            ha.leave().await;
        }
    };
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
