//! Answering Metrics API reads from this replica's shard stores and the informer caches:
//! selectors, the Running-pod filter, NotFound rules and ordering, as metrics-server does.
//! (Fan-out to other replicas comes with HA.)

pub mod params;

use crate::api::error::ApiError;
use crate::api::types::{ContainerUsage, Labels, NodeUsage, PodUsage};
use crate::informer::Caches;
use crate::informer::pods::Labels as PodLabels;
use shard::actor::ShardSet;
use shard::selector::{FieldSelector, LabelSelector};
use shard::store::{NodeMetrics, PodMetrics};
use std::sync::Arc;

pub use params::ListParams;

/// A pod row owned outside any lock: cache strings are shared, not copied.
pub struct PodRow {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub labels: PodLabels,
    pub metrics: PodMetrics,
}

impl PodRow {
    /// The row in the API layer's shape (borrowing from `self` and `containers`).
    pub fn usage<'a>(&'a self, containers: &'a [ContainerUsage<'a>]) -> PodUsage<'a> {
        PodUsage {
            namespace: &self.namespace,
            name: &self.name,
            labels: Labels::Shared(&self.labels),
            timestamp_ns: self.metrics.timestamp,
            window_ns: self.metrics.window,
            containers: containers.into(),
        }
    }

    pub fn containers(&self) -> Vec<ContainerUsage<'_>> {
        self.metrics
            .containers
            .iter()
            .map(|(name, u)| ContainerUsage {
                name,
                cpu_nanocores: u.cpu_nanocores,
                memory_bytes: u.memory_bytes,
            })
            .collect()
    }
}

/// A node row owned outside any lock.
pub struct NodeRow {
    pub name: Arc<str>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub metrics: NodeMetrics,
}

impl NodeRow {
    pub fn usage(&self) -> NodeUsage<'_> {
        NodeUsage {
            name: &self.name,
            labels: Labels::Map(&self.labels),
            timestamp_ns: self.metrics.timestamp,
            window_ns: self.metrics.window,
            cpu_nanocores: self.metrics.usage.cpu_nanocores,
            memory_bytes: self.metrics.usage.memory_bytes,
        }
    }
}

/// Reads over one replica's data.
pub struct Reader {
    pub caches: Arc<Caches>,
    pub shards: Arc<ShardSet>,
    /// `--node-selector`, ANDed with request selectors on node lists.
    pub node_selector: LabelSelector,
}

fn pod_fields_match(fields: &FieldSelector, namespace: &str, name: &str) -> bool {
    fields.matches(|f| match f {
        "metadata.name" => Some(name),
        "metadata.namespace" => Some(namespace),
        _ => None,
    })
}

impl Reader {
    /// Nodes in the cache that match, with servable metrics, sorted by name.
    pub fn list_nodes(&self, params: &ListParams) -> Vec<NodeRow> {
        let nodes = self.caches.nodes.read().expect("nodes lock");
        let mut rows: Vec<NodeRow> = nodes
            .nodes
            .values()
            .filter(|n| params.labels.matches(&n.labels) && self.node_selector.matches(&n.labels))
            .filter(|n| params.fields.matches(|f| (f == "metadata.name").then_some(&*n.name)))
            .filter_map(|n| {
                let metrics = self
                    .shards
                    .store_of(&n.name)
                    .read()
                    .expect("store lock")
                    .node(&n.name)?;
                Some(NodeRow {
                    name: n.name.clone(),
                    labels: n.labels.clone(),
                    metrics,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        rows
    }

    /// One node: `NodeNotFound` if the cache has no such node, `NodeMetricsNotFound` if it has
    /// no servable metrics.
    pub fn get_node(&self, name: &str) -> Result<NodeRow, ApiError> {
        let nodes = self.caches.nodes.read().expect("nodes lock");
        let node = nodes
            .nodes
            .get(name)
            .ok_or_else(|| ApiError::NodeNotFound { name: name.to_string() })?;
        let metrics = self.shards.store_of(name).read().expect("store lock").node(name);
        let metrics = metrics.ok_or_else(|| ApiError::NodeMetricsNotFound { name: name.to_string() })?;
        Ok(NodeRow {
            name: node.name.clone(),
            labels: node.labels.clone(),
            metrics,
        })
    }

    /// Running pods that match, with servable metrics, sorted by namespace and name.
    pub fn list_pods(&self, namespace: Option<&str>, params: &ListParams) -> Vec<PodRow> {
        let pods = self.caches.pods.read().expect("pods lock");
        let mut rows = Vec::new();
        for store in &self.shards.stores {
            let store = store.read().expect("store lock");
            let mut visit = |ns: &str, name: &str, metrics: PodMetrics| {
                let Some((ns, name, meta)) = pods.get(ns, name) else {
                    return;
                };
                if params.labels.matches(meta) && pod_fields_match(&params.fields, ns, name) {
                    rows.push(PodRow {
                        namespace: ns.clone(),
                        name: name.clone(),
                        labels: meta.labels.clone(),
                        metrics,
                    });
                }
            };
            match namespace {
                Some(ns) => store.pods_in(ns).for_each(|(name, m)| visit(ns, name, m)),
                None => store.pods().for_each(|(ns, name, m)| visit(ns, name, m)),
            }
        }
        rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        rows
    }

    /// One pod: `PodNotFound` unless Running in the cache, `PodMetricsNotFound` without metrics.
    pub fn get_pod(&self, namespace: &str, name: &str) -> Result<PodRow, ApiError> {
        let pods = self.caches.pods.read().expect("pods lock");
        let not_found = || ApiError::PodNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let (ns, pod_name, meta) = pods.get(namespace, name).ok_or_else(not_found)?;
        let metrics = self
            .shards
            .stores
            .iter()
            .find_map(|s| s.read().expect("store lock").pod(namespace, name));
        let metrics = metrics.ok_or_else(|| ApiError::PodMetricsNotFound {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })?;
        Ok(PodRow {
            namespace: ns.clone(),
            name: pod_name.clone(),
            labels: meta.labels.clone(),
            metrics,
        })
    }

    /// Whether at least one node and one pod can be served (readiness).
    pub fn ready(&self) -> bool {
        let (mut nodes, mut pods) = (false, false);
        for store in &self.shards.stores {
            let (n, c) = store.read().expect("store lock").servable_counts();
            nodes |= n > 0;
            pods |= c > 0;
            if nodes && pods {
                return true;
            }
        }
        false
    }
}
