//! Wiring and shutdown order: Kubernetes client -> informers -> shard actors (all shards with
//! one replica; with peers, Raft and the peer channel decide which) -> HTTPS server (HTTP/2 and
//! HTTP/1.1); on SIGTERM: readyz fails, requests are served for `--shutdown-delay-duration`,
//! GOAWAY, in-flight requests drain, exit (see [`crate::serve::run`]).

use crate::auth::Auth;
use crate::config::Config;
use crate::health::Health;
use crate::informer::{self, Caches};
use crate::metrics::Metrics;
use crate::query::Reader;
use crate::serve::listener::MakeApp;
use crate::web::{ReadinessSource, WebState, dispatch};
use actix_web::{App, web};
use apimachinery::selector::LabelSelector;
use shard::actor::{ShardContext, ShardSet};
use shard::parse::Limits;
use shard::scrape::AddressPolicy;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
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
    let shards = if config.ha.enabled() {
        Arc::new(ShardSet::idle(config.shards, shard_ctx))
    } else {
        Arc::new(ShardSet::start(config.shards, shard_ctx))
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
    let ha = if config.ha.enabled() {
        Some(start_ha(&config, shards, metrics.clone(), &reader).await?)
    } else {
        None
    };
    if let Some(ha) = &ha {
        let _ = ha_cell.set(Arc::downgrade(ha));
        reader.fanout = Some(ha.clone());
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
    serve(&config, state, &auth, ha).await
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
    let server = crate::ha::routes::serve(ha.clone(), reader.clone(), (*tls.server).clone(), config.peer_workers())?;
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

/// The Metrics API's application (every path goes to [`dispatch`]) on the HTTPS listener, until
/// SIGTERM; during the shutdown delay a replica with peers leaves the replica set.
async fn serve(
    config: &Config,
    state: web::Data<WebState>,
    auth: &Auth,
    ha: Option<Arc<crate::ha::Ha>>,
) -> anyhow::Result<()> {
    let shared = state.clone();
    let make_app: MakeApp = Arc::new(move || {
        use actix_service::IntoServiceFactory;
        let app = App::new().app_data(shared.clone()).default_service(web::to(dispatch));
        actix_service::boxed::factory(app.into_factory())
    });
    let leave = async {
        if let Some(ha) = &ha {
            ha.leave().await;
        }
    };
    crate::serve::run(
        config,
        make_app,
        auth.dynamic().clone(),
        &state.health.shutting_down,
        leave,
    )
    .await
}
