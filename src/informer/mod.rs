//! Informers: watches of Nodes and of Running pods' metadata (kube-rs), kept in compact caches
//! that the API handlers read and the scrape supervisor follows.

pub mod intern;
pub mod nodes;
pub mod pods;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

pub use nodes::NodeCache;
pub use pods::{PodCache, PodMeta};

/// The caches shared by the API and the scrapers.
#[derive(Default)]
pub struct Caches {
    pub nodes: RwLock<NodeCache>,
    pub pods: RwLock<PodCache>,
    /// The pod metadata watch's task runs (`metadata-informer-sync`).
    pub metadata_running: AtomicBool,
}

/// Clears [`Caches::metadata_running`] when the pod watch's task ends, panics included.
struct Running(Arc<Caches>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.metadata_running.store(false, Ordering::Relaxed);
        tracing::error!("the pod metadata watch stopped");
    }
}

impl Caches {
    pub fn synced(&self) -> bool {
        self.nodes.read().expect("nodes lock").synced && self.pods.read().expect("pods lock").synced
    }
}

/// Runs both watches until the process ends; `changed` is told of every node change.
pub fn spawn(client: Client, caches: Arc<Caches>, changed: watch::Sender<u64>) {
    let nodes = caches.clone();
    let node_stream = watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(node_stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    let generation = {
                        let mut cache = nodes.nodes.write().expect("nodes lock");
                        cache.apply(event);
                        cache.generation
                    };
                    changed.send_if_modified(|g| std::mem::replace(g, generation) != generation);
                }
                Err(e) => tracing::warn!(error = %e, "node watch failed; retrying"),
            }
        }
    });
    let pod_config = watcher::Config::default().fields("status.phase=Running");
    let pod_stream = watcher(Api::<PartialObjectMeta<Pod>>::all(client), pod_config).default_backoff();
    caches.metadata_running.store(true, Ordering::Relaxed);
    let running = Running(caches.clone());
    tokio::spawn(async move {
        let _running = running;
        let mut stream = std::pin::pin!(pod_stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => caches.pods.write().expect("pods lock").apply(event),
                Err(e) => tracing::warn!(error = %e, "pod metadata watch failed; retrying"),
            }
        }
    });
}
