//! [`KubeletHost`]: the fake kubelets of one process. It holds the part of the world its nodes
//! need, one HTTPS listener per node, and each kubelet's fault switch and scrape counters.

use super::faults::Fault;
use super::render::Template;
use super::server::Kubelet;
use crate::pki::{Ca, LeafSpec, PkiError};
use crate::sim::{Changed, Millis, SimEvent, World};
use rcgen::KeyPair;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

/// The annotation that overrides a node's metrics path (honoured by metrics-server).
pub const METRICS_PATH_ANNOTATION: &str = "metrics.k8s.io/resource-metrics-path";
pub const DEFAULT_METRICS_PATH: &str = "/metrics/resource";

/// Scrape counters of one kubelet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeletStats {
    pub address: SocketAddr,
    /// Authorised requests for the metrics path.
    pub scrapes: u64,
    /// Requests refused for missing or wrong credentials.
    pub unauthorized: u64,
    /// Unix ms of the last authorised scrape, 0 if none.
    pub last_scrape_ms: Millis,
    pub fault: Option<Fault>,
}

/// What a host needs to serve kubelets.
pub struct HostConfig {
    /// The cluster CA: signs kubelet serving certificates and accepted client certificates.
    pub ca: Arc<Ca>,
    /// The bearer token kubelets accept.
    pub token: String,
}

/// The bearer token every kubelet of a host accepts; replaced when the cluster rotates the
/// metrics server's service-account token (only the new one is accepted from then on).
pub type SharedToken = Arc<std::sync::RwLock<String>>;

pub struct KubeletHost {
    world: Mutex<World>,
    kubelets: Mutex<HashMap<String, Arc<Kubelet>>>,
    config: HostConfig,
    token: SharedToken,
    leaf_key: KeyPair,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl KubeletHost {
    pub fn new(config: HostConfig) -> Result<Arc<Self>, PkiError> {
        crate::pki::install_crypto_provider();
        let roots = Arc::new(crate::pki::roots(&config.ca.cert_der));
        let verifier = WebPkiClientVerifier::builder(roots)
            .allow_unauthenticated()
            .build()
            .expect("a root store with one CA makes a verifier");
        Ok(Arc::new(KubeletHost {
            world: Mutex::new(World::default()),
            kubelets: Mutex::new(HashMap::new()),
            leaf_key: KeyPair::generate()?,
            token: Arc::new(std::sync::RwLock::new(config.token.clone())),
            config,
            verifier,
        }))
    }

    /// Applies events, starts and stops kubelets, and re-lays the templates of changed nodes.
    /// Returns one message per event that could not be applied.
    pub async fn apply(self: &Arc<Self>, events: &[SimEvent]) -> Vec<String> {
        let mut errors = Vec::new();
        let (added, removed, touched) = self.apply_to_world(events, &mut errors);
        for name in removed {
            if let Some(k) = self.kubelets.lock().expect("kubelets lock").remove(&name) {
                k.stop();
            }
        }
        let starts: Vec<_> = added
            .into_iter()
            .filter_map(|name| self.new_kubelet(&name, &mut errors))
            .collect();
        for (kubelet, bound) in starts {
            match bound.await {
                Ok(Ok(())) => {
                    self.kubelets
                        .lock()
                        .expect("kubelets lock")
                        .insert(kubelet.node.clone(), kubelet);
                }
                Ok(Err(e)) => errors.push(format!("kubelet {} on {}: {e}", kubelet.node, kubelet.addr)),
                Err(_) => errors.push(format!("kubelet {} stopped before binding", kubelet.node)),
            }
        }
        self.relayout(touched);
        errors
    }

    /// Returns (added nodes, removed nodes, nodes whose pods changed).
    fn apply_to_world(&self, events: &[SimEvent], errors: &mut Vec<String>) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut world = self.world.lock().expect("world lock");
        let (mut added, mut removed, mut touched) = (Vec::new(), Vec::new(), Vec::new());
        for event in events {
            let node = world.node_of_event(event);
            match world.apply(event) {
                Ok(changes) => {
                    for change in changes {
                        match change {
                            Changed::Node(_) if matches!(event, SimEvent::AddNode { .. }) => added.extend(node.clone()),
                            Changed::NodeDeleted(name) => removed.push(name),
                            _ => touched.extend(node.clone()),
                        }
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        touched.extend(added.iter().cloned());
        touched.sort();
        touched.dedup();
        (added, removed, touched)
    }

    fn relayout(&self, nodes: Vec<String>) {
        let world = self.world.lock().expect("world lock");
        let kubelets = self.kubelets.lock().expect("kubelets lock");
        for name in nodes {
            if let (Some(node), Some(kubelet)) = (world.nodes.get(&name), kubelets.get(&name)) {
                kubelet.set_template(Template::build(&world, node));
            }
        }
    }

    fn new_kubelet(
        self: &Arc<Self>,
        name: &str,
        errors: &mut Vec<String>,
    ) -> Option<(Arc<Kubelet>, tokio::sync::oneshot::Receiver<std::io::Result<()>>)> {
        let (addr, path) = {
            let world = self.world.lock().expect("world lock");
            let spec = &world.nodes.get(name)?.spec;
            let path = spec.annotations.get(METRICS_PATH_ANNOTATION).cloned();
            (
                SocketAddr::new(IpAddr::V4(spec.ip), spec.kubelet_port),
                path.unwrap_or_else(|| DEFAULT_METRICS_PATH.into()),
            )
        };
        let leaf = LeafSpec {
            common_name: name.to_string(),
            ips: vec![addr.ip()],
            dns: vec![name.to_string()],
            server: true,
            ..Default::default()
        };
        let cert = match self.config.ca.issue_with_key(&leaf, &self.leaf_key) {
            Ok(cert) => cert,
            Err(e) => {
                errors.push(format!("kubelet {name}: {e}"));
                return None;
            }
        };
        let tls = match tls_config(self.verifier.clone(), &cert) {
            Ok(tls) => tls,
            Err(e) => {
                errors.push(format!("kubelet {name}: {e}"));
                return None;
            }
        };
        let kubelet = Kubelet::new(name.to_string(), addr, path, self.token.clone(), tls);
        let bound = kubelet.clone().spawn();
        Some((kubelet, bound))
    }

    /// From now on every kubelet of this host accepts `token` and no other bearer token.
    pub fn set_token(&self, token: &str) {
        *self.token.write().expect("token lock") = token.to_string();
    }

    /// Switches a kubelet's fault (`None` clears it).
    pub fn set_fault(&self, node: &str, fault: Option<Fault>) -> Result<(), String> {
        let kubelets = self.kubelets.lock().expect("kubelets lock");
        let kubelet = kubelets
            .get(node)
            .ok_or_else(|| format!("node {node:?} has no kubelet here"))?;
        kubelet.set_fault(fault);
        Ok(())
    }

    pub fn stats(&self) -> BTreeMap<String, KubeletStats> {
        let kubelets = self.kubelets.lock().expect("kubelets lock");
        kubelets.iter().map(|(name, k)| (name.clone(), k.stats())).collect()
    }

    /// Renders a node's payload now, as a scrape without faults would see it.
    pub fn render(&self, node: &str, ts: Millis) -> Option<Vec<u8>> {
        let kubelets = self.kubelets.lock().expect("kubelets lock");
        let kubelet = kubelets.get(node)?;
        Some(kubelet.render(ts, &Default::default()))
    }

    /// Stops every kubelet.
    pub fn shutdown(&self) {
        for (_, k) in self.kubelets.lock().expect("kubelets lock").drain() {
            k.stop();
        }
    }
}

/// TLS sessions each kubelet keeps for resumption.
const KUBELET_TLS_SESSIONS: usize = 8;

fn tls_config(
    verifier: Arc<dyn ClientCertVerifier>,
    cert: &crate::pki::Leaf,
) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.cert_der.clone()], cert.key_der())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // rustls' default keeps 256 sessions per config, a table of about 25 KiB made up front: 62
    // MiB for a worker's 2,500 kubelets. A scraper keeps its connection alive and resumes
    // rarely; a few sessions per kubelet do.
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(KUBELET_TLS_SESSIONS);
    Ok(Arc::new(config))
}
