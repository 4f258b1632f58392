//! [`Cluster`]: a whole simulated cluster — world, apiserver, aggregation proxy and kubelets —
//! started in-process by tests or by the `kubesim` binary.

pub mod actions;
pub mod admin;
pub mod files;
pub mod pool;

use crate::apiserver::auth::{Authority, Policy, Rule, UserInfo};
use crate::apiserver::objects;
use crate::apiserver::proxy::{DEFAULT_PROBE, ProbeConfig, Proxy};
use crate::apiserver::server::{ApiServer, ApiState};
use crate::apiserver::store::{DEFAULT_HISTORY, Kind, Store};
use crate::kubelet::server::now_ms;
use crate::kubelet::{Fault, HostConfig, KubeletHost, KubeletStats};
use crate::sim::generate::{self, NODES_PER_BLOCK, Shape};
use crate::sim::rng::Rng;
use crate::sim::truth::{PodTruth, Usage};
use crate::sim::{Changed, Millis, SimEvent, World};
use actions::{Action, Plan};
use files::{Paths, Pki};
use pool::Pool;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

pub use files::CLUSTER_CA_NAME;

/// Kubelets per process by default: each costs a listener and a scrape connection, and a
/// process has about 19,000 files.
pub const DEFAULT_KUBELETS_PER_PROCESS: u32 = 4000;
/// The kubelet port of every node.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// The user of the metrics server's token.
pub const METRICS_SERVER_USER: &str = "system:serviceaccount:kube-system:metrics-server";

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub nodes: u32,
    pub pods_per_node: u32,
    pub seed: u64,
    /// Where to write kubeconfigs and certificates; a new temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// The apiserver's address; port 0 picks one.
    pub api_addr: SocketAddr,
    /// Serve the apiserver over HTTPS (bearer tokens required) instead of plain HTTP.
    pub https: bool,
    pub kubelet_port: u16,
    /// Second octet of kubelet addresses; `None` finds a free block.
    pub ip_octet: Option<u8>,
    pub kubelets_per_process: u32,
    /// The `kubesim` binary, for kubelet worker processes (large clusters only).
    pub kubesim_bin: Option<PathBuf>,
    /// Metrics API replicas behind the aggregation proxy (`host:port`).
    pub replicas: Vec<String>,
    pub replicas_per_deployment: u32,
    /// The replicas' readiness probe, by which the aggregation proxy picks ready endpoints.
    pub probe: ProbeConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nodes: 3,
            pods_per_node: 5,
            seed: 1,
            dir: None,
            api_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            https: false,
            kubelet_port: DEFAULT_KUBELET_PORT,
            ip_octet: None,
            kubelets_per_process: DEFAULT_KUBELETS_PER_PROCESS,
            kubesim_bin: None,
            replicas: Vec::new(),
            replicas_per_deployment: generate::DEFAULT_REPLICAS,
            probe: DEFAULT_PROBE,
        }
    }
}

/// Why a cluster operation failed. Worth retrying only if it says a process died.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{0}")]
    World(#[from] crate::sim::WorldError),
    #[error("kubelets: {}", .0.join("; "))]
    Kubelets(Vec<String>),
    #[error("{0}")]
    Invalid(String),
}

pub(crate) struct Inner {
    pub paths: Paths,
    remove_dir: bool,
    pub shape: Shape,
    pub world: Mutex<World>,
    pub store: Arc<Store>,
    pub authority: Arc<Authority>,
    pub proxy: Arc<Proxy>,
    pool: Pool,
    api: Mutex<Option<ApiServer>>,
    pub api_url: OnceLock<String>,
    rng: Mutex<Rng>,
    namespaces: Mutex<BTreeSet<String>>,
    /// The current metrics-server token (the one kubelets accept).
    pub metrics_server_token: Mutex<String>,
    pub admin_token: String,
}

/// A running simulated cluster. Cheap to clone; stops when [`Cluster::shutdown`] is called.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) inner: Arc<Inner>,
}

impl Cluster {
    /// Builds and starts a cluster; returns when every kubelet listens and the apiserver serves.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Cluster> {
        crate::pki::install_crypto_provider();
        let (dir, remove_dir) = match &config.dir {
            Some(dir) => (dir.clone(), false),
            None => (temp_dir()?, true),
        };
        std::fs::create_dir_all(&dir)?;
        let pki = Pki::generate()?;
        pki.write(&dir)?;
        let mut token_rng = Rng::new(now_ms() as u64 ^ std::process::id() as u64);
        let metrics_server_token = files::token(&mut token_rng);
        let admin_token = files::token(&mut token_rng);
        std::fs::write(dir.join("metrics-server.token"), &metrics_server_token)?;
        std::fs::write(dir.join("admin.token"), &admin_token)?;
        let octet = match config.ip_octet {
            Some(o) => o,
            None => free_octet(config.kubelet_port, config.seed)?,
        };
        if config.nodes > NODES_PER_BLOCK {
            anyhow::bail!("at most {NODES_PER_BLOCK} nodes per cluster");
        }
        let shape = Shape {
            nodes: config.nodes,
            pods_per_node: config.pods_per_node,
            seed: config.seed,
            ip_octet: octet,
            kubelet_port: config.kubelet_port,
            now: now_ms(),
            replicas_per_deployment: config
                .replicas_per_deployment
                .min((config.nodes * config.pods_per_node / 10).max(2)),
        };
        let authority = Arc::new(Authority::new(default_policy(&metrics_server_token, &admin_token)));
        let proxy = Proxy::new(
            crate::tls::insecure_client(Some(&pki.front_proxy_client))?,
            config.probe,
        )?;
        proxy.set_replicas(&config.replicas);
        proxy.spawn_probes();
        let pool = start_pool(&config, &dir, &pki, &metrics_server_token).await?;
        let inner = Arc::new(Inner {
            paths: Paths { dir: dir.clone() },
            remove_dir,
            shape: shape.clone(),
            world: Mutex::new(World::default()),
            store: Store::new(DEFAULT_HISTORY),
            authority,
            proxy,
            pool,
            api: Mutex::new(None),
            api_url: OnceLock::new(),
            rng: Mutex::new(Rng::derive(config.seed, 99)),
            namespaces: Mutex::new(BTreeSet::new()),
            metrics_server_token: Mutex::new(metrics_server_token),
            admin_token,
        });
        let cluster = Cluster { inner };
        cluster.start_apiserver(&config, &pki).await?;
        cluster.seed_objects(&pki);
        let events = generate::initial_events(&shape);
        cluster.apply(events).await?;
        // Written last: its presence tells a parent process that every kubelet listens.
        let info = serde_json::json!({"apiUrl": cluster.api_url(), "dir": dir, "nodes": config.nodes,
                                      "podsPerNode": config.pods_per_node, "seed": config.seed});
        std::fs::write(dir.join("cluster.json"), serde_json::to_vec_pretty(&info)?)?;
        tracing::info!(dir = %dir.display(), api = %cluster.api_url(), nodes = config.nodes,
                       processes = cluster.inner.pool.process_count(), "kubesim cluster running");
        Ok(cluster)
    }

    async fn start_apiserver(&self, config: &ClusterConfig, pki: &Pki) -> anyhow::Result<()> {
        let state = Arc::new(ApiState {
            store: self.inner.store.clone(),
            authority: self.inner.authority.clone(),
            proxy: self.inner.proxy.clone(),
            admin: Some(admin::handler(Arc::downgrade(&self.inner))),
        });
        let tls = if config.https { Some(apiserver_tls(pki)?) } else { None };
        let api = ApiServer::start(state, config.api_addr, tls).await?;
        let url = api.url();
        let _ = self.inner.api_url.set(url.clone());
        *self.inner.api.lock().expect("api lock") = Some(api);
        let paths = &self.inner.paths;
        let ca = config.https.then(|| paths.ca());
        std::fs::write(
            paths.kubeconfig(),
            files::kubeconfig(&url, ca.as_deref(), &self.inner.admin_token, "default"),
        )?;
        let ms =
            files::kubeconfig_with_token_file(&url, Some(&paths.ca()), &paths.metrics_server_token(), "kube-system");
        std::fs::write(paths.metrics_server_kubeconfig(), ms)?;
        Ok(())
    }

    /// Objects that exist before any node: the system namespaces and the authentication ConfigMap.
    fn seed_objects(&self, pki: &Pki) {
        let created = self.inner.shape.now - 30 * 86_400_000;
        for ns in ["default", "kube-system", "kube-public"] {
            self.ensure_namespace(ns, created);
        }
        let cm = objects::authentication_configmap(
            &pki.cluster_ca.cert_pem,
            &pki.front_proxy_ca.cert_pem,
            &[files::FRONT_PROXY_CLIENT],
            created,
        );
        self.inner.store.upsert(Kind::ConfigMaps, cm);
    }

    fn ensure_namespace(&self, ns: &str, created: Millis) {
        let mut namespaces = self.inner.namespaces.lock().expect("namespaces lock");
        if namespaces.insert(ns.to_string()) {
            self.inner
                .store
                .upsert(Kind::Namespaces, objects::namespace(ns, created));
        }
    }

    /// Applies events to the world, the apiserver's objects and the kubelets, in order. Stops at
    /// the first event the world refuses.
    pub async fn apply(&self, events: Vec<SimEvent>) -> Result<(), ClusterError> {
        let mut routed = Vec::with_capacity(events.len());
        let mut refused = None;
        {
            let mut world = self.inner.world.lock().expect("world lock");
            for event in events {
                let node = world.node_of_event(&event);
                match world.apply(&event) {
                    Ok(changes) => self.publish(&world, changes),
                    Err(e) => {
                        refused = Some(e);
                        break;
                    }
                }
                routed.push((node, event));
            }
        }
        let errors = self.inner.pool.apply(routed).await;
        match (refused, errors.is_empty()) {
            (Some(e), _) => Err(e.into()),
            (None, false) => Err(ClusterError::Kubelets(errors)),
            (None, true) => Ok(()),
        }
    }

    /// Renders changed objects into the apiserver's store.
    fn publish(&self, world: &World, changes: Vec<Changed>) {
        let store = &self.inner.store;
        for change in changes {
            match change {
                Changed::Node(name) => {
                    if let Some(node) = world.nodes.get(&name) {
                        store.upsert(Kind::Nodes, objects::node(node));
                    }
                }
                Changed::NodeDeleted(name) => {
                    store.delete(Kind::Nodes, "", &name);
                }
                Changed::Pod(key) => {
                    if let Some(pod) = world.pods.get(&key) {
                        self.ensure_namespace(&key.0, pod.spec.created.min(self.inner.shape.now) - 86_400_000);
                        store.upsert(Kind::Pods, objects::pod(world, pod));
                    }
                }
                Changed::PodDeleted((ns, name)) => {
                    store.delete(Kind::Pods, &ns, &name);
                }
            }
        }
    }

    /// Carries out an action now; returns what it created, if anything (e.g. a pod's name).
    pub async fn act(&self, action: Action) -> Result<serde_json::Value, ClusterError> {
        let plan = {
            let world = self.inner.world.lock().expect("world lock");
            let mut rng = self.inner.rng.lock().expect("rng lock");
            actions::plan(action, &world, &self.inner.shape, &mut rng, now_ms()).map_err(ClusterError::Invalid)?
        };
        match plan {
            Plan::Fault(node, fault) => self.set_fault(&node, fault).await.map(|_| serde_json::Value::Null),
            Plan::Replicas(addresses) => {
                self.set_replicas(&addresses);
                Ok(serde_json::Value::Null)
            }
            Plan::DropWatches => {
                self.inner.store.drop_watches();
                Ok(serde_json::Value::Null)
            }
            Plan::Events(events) => {
                let created = created_names(&events);
                self.apply(events).await?;
                Ok(created)
            }
        }
    }

    pub async fn set_fault(&self, node: &str, fault: Option<Fault>) -> Result<(), ClusterError> {
        self.inner
            .pool
            .set_fault(node, fault)
            .await
            .map_err(ClusterError::Invalid)
    }

    /// Replaces the aggregation proxy's endpoints (a removed one is gone at once, as a deleted
    /// pod's endpoint is); new ones are probed at once, then every probe period.
    pub fn set_replicas(&self, addresses: &[String]) {
        let added = self.inner.proxy.set_replicas(addresses);
        if !added.is_empty() {
            let proxy = self.inner.proxy.clone();
            tokio::spawn(async move { proxy.probe_now(&added).await });
        }
    }

    pub async fn kubelet_stats(&self) -> BTreeMap<String, KubeletStats> {
        self.inner.pool.stats().await
    }

    /// Runs `f` on the world (for ground truth and lookups).
    pub fn with_world<T>(&self, f: impl FnOnce(&World) -> T) -> T {
        f(&self.inner.world.lock().expect("world lock"))
    }

    pub fn node_truth(&self, node: &str, start: Millis, end: Millis) -> Option<Usage> {
        self.with_world(|w| w.node_truth(node, start, end))
    }

    pub fn pod_truth(&self, namespace: &str, name: &str, start: Millis, end: Millis) -> Option<PodTruth> {
        self.with_world(|w| w.pod_truth(namespace, name, start, end))
    }

    pub fn api_url(&self) -> String {
        self.inner.api_url.get().cloned().unwrap_or_default()
    }

    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.inner.paths.dir
    }

    /// The token kubelets accept now.
    pub fn metrics_server_token(&self) -> String {
        self.inner.metrics_server_token.lock().expect("token lock").clone()
    }

    /// Rotates the metrics server's service-account token as the kubelet rotates a projected
    /// token: a new token is written to `metrics-server.token` (atomically, by rename), and from
    /// then on kubelets and TokenReview accept only the new one. Returns the new token.
    pub async fn rotate_metrics_server_token(&self) -> anyhow::Result<String> {
        // Not the seeded action rng: a rotation must not change what a seeded run does next.
        let token = files::token(&mut Rng::new(now_ms() as u64 ^ std::process::id() as u64 ^ 0x5eed));
        let path = self.inner.paths.metrics_server_token();
        let staged = path.with_extension("token.new");
        std::fs::write(&staged, &token)?;
        std::fs::rename(&staged, &path)?;
        let old = std::mem::replace(
            &mut *self.inner.metrics_server_token.lock().expect("token lock"),
            token.clone(),
        );
        self.inner.pool.set_token(&token).await.map_err(anyhow::Error::msg)?;
        let mut policy = self.inner.authority.policy();
        if let Some(user) = policy.tokens.remove(&old) {
            policy.tokens.insert(token.clone(), user);
        }
        self.inner.authority.set_policy(policy);
        tracing::info!("metrics-server token rotated");
        Ok(token)
    }

    pub fn admin_token(&self) -> &str {
        &self.inner.admin_token
    }

    pub fn authority(&self) -> &Arc<Authority> {
        &self.inner.authority
    }

    pub fn set_policy(&self, policy: Policy) {
        self.inner.authority.set_policy(policy);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    /// Stops the apiserver and every kubelet, and removes a temporary directory.
    pub fn shutdown(&self) {
        if let Some(api) = self.inner.api.lock().expect("api lock").take() {
            api.stop();
        }
        self.inner.pool.shutdown();
        if self.inner.remove_dir {
            let _ = std::fs::remove_dir_all(&self.inner.paths.dir);
        }
    }
}

fn created_names(events: &[SimEvent]) -> serde_json::Value {
    match events {
        [SimEvent::AddNode { node }] => serde_json::json!({"node": node.name}),
        [SimEvent::AddPod { pod }] => {
            serde_json::json!({"namespace": pod.namespace, "name": pod.name, "node": pod.node})
        }
        _ => serde_json::Value::Null,
    }
}

async fn start_pool(config: &ClusterConfig, dir: &std::path::Path, pki: &Pki, token: &str) -> anyhow::Result<Pool> {
    let per_process = config.kubelets_per_process.max(1);
    if config.nodes <= per_process {
        let ca = crate::pki::Ca::from_pem(CLUSTER_CA_NAME, &pki.cluster_ca.cert_pem, &pki.cluster_ca.key_pem)?;
        let host = KubeletHost::new(HostConfig {
            ca: Arc::new(ca),
            token: token.to_string(),
        })?;
        return Ok(Pool::Local(host));
    }
    let exe = match &config.kubesim_bin {
        Some(exe) => exe.clone(),
        None => crate::kubesim_bin()?,
    };
    let count = config.nodes.div_ceil(per_process) as usize;
    let mut workers = Vec::with_capacity(count);
    for _ in 0..count {
        workers.push(crate::kubelet::worker::Worker::spawn(&exe, dir).await?);
    }
    Ok(Pool::Workers {
        workers,
        placement: Mutex::new(Default::default()),
    })
}

fn apiserver_tls(pki: &Pki) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![pki.apiserver.cert_der.clone()], pki.apiserver.key_der())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Tokens for the metrics server and an admin; the metrics server may read what it needs.
fn default_policy(metrics_server_token: &str, admin_token: &str) -> Policy {
    let ms = UserInfo {
        username: METRICS_SERVER_USER.into(),
        uid: "metrics-server-uid".into(),
        groups: vec![
            "system:serviceaccounts".into(),
            "system:serviceaccounts:kube-system".into(),
            "system:authenticated".into(),
        ],
        extra: Default::default(),
    };
    let admin = UserInfo {
        username: "kubesim-admin".into(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        ..Default::default()
    };
    let read = |resources: &[&str]| Rule {
        users: vec![METRICS_SERVER_USER.into()],
        verbs: vec!["get".into(), "list".into(), "watch".into()],
        api_groups: vec![String::new()],
        resources: resources.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    Policy {
        tokens: BTreeMap::from([
            (metrics_server_token.to_string(), ms),
            (admin_token.to_string(), admin.clone()),
        ]),
        rules: vec![read(&["nodes", "nodes/metrics", "pods", "namespaces", "configmaps"])],
        anonymous: Some(admin),
    }
}

/// A second octet whose first kubelet address is free on `port` (tests run clusters in parallel).
fn free_octet(port: u16, seed: u64) -> anyhow::Result<u8> {
    let start = (Rng::new(seed ^ std::process::id() as u64 ^ now_ms() as u64).below(200) + 20) as u8;
    for step in 0..230u16 {
        let octet = ((start as u16 + step) % 230 + 20) as u8;
        let addr = SocketAddr::from((generate::node_ip(octet, 0), port));
        if std::net::TcpListener::bind(addr).is_ok() {
            return Ok(octet);
        }
    }
    anyhow::bail!("no free 127.x block for kubelets on port {port}")
}

fn temp_dir() -> std::io::Result<PathBuf> {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("kubesim-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
