//! Answering Metrics API reads: selectors, the Running-pod filter, NotFound rules and ordering,
//! as metrics-server does, plus pages (`limit`/`continue`, [`page`]) and `spec.nodeName`,
//! answered from the one shard that node belongs to. With one replica every shard is read from
//! this replica's stores;
//! with peers, the replica set's [`Fanout`] (`crate::ha`) asks the owners of the shards (see
//! `answer.rs` for the owner's side and the rows coming back). The read path flows one way:
//! `web` -> `query` -> `ha` (through [`Fanout`]) -> `peer`; `query` never names `ha`.

mod answer;
pub mod page;
pub mod params;

use crate::api::error::ApiError;
use crate::api::types::{ContainerUsage, Labels, NodeUsage, PodItem};
use crate::informer::Caches;
use crate::informer::PodMeta;
use crate::informer::pods::Labels as PodLabels;
use crate::peer::wire::{QueryResponse, QueryTarget, WirePod};
use apimachinery::selector::{FieldSelector, LabelSelector};
use shard::actor::ShardSet;
use shard::store::{NodeMetrics, PodMetrics};
use std::sync::Arc;

pub use answer::shard_answer;

pub use params::ListParams;

/// A pod row owned outside any lock: cache strings are shared, not copied.
pub struct PodRow {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub labels: PodLabels,
    pub metrics: PodMetrics,
}

impl PodItem for PodRow {
    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn labels(&self) -> Labels<'_> {
        Labels::Shared(&self.labels)
    }

    fn timestamp_ns(&self) -> i64 {
        self.metrics.timestamp
    }

    fn window_ns(&self) -> i64 {
        self.metrics.window
    }

    fn container_count(&self) -> usize {
        self.metrics.containers.len()
    }

    fn container(&self, i: usize) -> ContainerUsage<'_> {
        let (name, usage) = &self.metrics.containers[i];
        ContainerUsage {
            name,
            cpu_nanocores: usage.cpu_nanocores,
            memory_bytes: usage.memory_bytes,
            swap_bytes: usage.swap_bytes,
        }
    }
}

/// A pod row from a fan-out answer: the owner's wire row as it came (nothing copied) and the
/// labels from this replica's cache.
pub struct GatheredPod {
    pub labels: PodLabels,
    pub wire: WirePod,
}

impl PodItem for GatheredPod {
    fn namespace(&self) -> &str {
        &self.wire.namespace
    }

    fn name(&self) -> &str {
        &self.wire.name
    }

    fn labels(&self) -> Labels<'_> {
        Labels::Shared(&self.labels)
    }

    fn timestamp_ns(&self) -> i64 {
        self.wire.timestamp
    }

    fn window_ns(&self) -> i64 {
        self.wire.window
    }

    fn container_count(&self) -> usize {
        self.wire.containers.len()
    }

    fn container(&self, i: usize) -> ContainerUsage<'_> {
        let (name, cpu_nanocores, memory_bytes, swap_bytes) = &self.wire.containers[i];
        ContainerUsage {
            name,
            cpu_nanocores: *cpu_nanocores,
            memory_bytes: *memory_bytes,
            swap_bytes: *swap_bytes,
        }
    }
}

/// A pod row from this replica's stores or from another replica's answer.
pub enum AnyPod {
    Local(PodRow),
    Gathered(GatheredPod),
}

impl PodItem for AnyPod {
    fn namespace(&self) -> &str {
        match self {
            AnyPod::Local(p) => p.namespace(),
            AnyPod::Gathered(p) => p.namespace(),
        }
    }

    fn name(&self) -> &str {
        match self {
            AnyPod::Local(p) => p.name(),
            AnyPod::Gathered(p) => p.name(),
        }
    }

    fn labels(&self) -> Labels<'_> {
        match self {
            AnyPod::Local(p) => p.labels(),
            AnyPod::Gathered(p) => p.labels(),
        }
    }

    fn timestamp_ns(&self) -> i64 {
        match self {
            AnyPod::Local(p) => p.timestamp_ns(),
            AnyPod::Gathered(p) => p.timestamp_ns(),
        }
    }

    fn window_ns(&self) -> i64 {
        match self {
            AnyPod::Local(p) => p.window_ns(),
            AnyPod::Gathered(p) => p.window_ns(),
        }
    }

    fn container_count(&self) -> usize {
        match self {
            AnyPod::Local(p) => p.container_count(),
            AnyPod::Gathered(p) => p.container_count(),
        }
    }

    fn container(&self, i: usize) -> ContainerUsage<'_> {
        match self {
            AnyPod::Local(p) => p.container(i),
            AnyPod::Gathered(p) => p.container(i),
        }
    }
}

/// The pods of a read, sorted by namespace and name: this replica's own rows (one replica, or
/// every shard held here), the owners' answers, or both.
pub enum PodRows {
    Local(Vec<PodRow>),
    Gathered(Vec<GatheredPod>),
    Mixed(Vec<AnyPod>),
}

impl PodRows {
    pub fn len(&self) -> usize {
        match self {
            PodRows::Local(rows) => rows.len(),
            PodRows::Gathered(rows) => rows.len(),
            PodRows::Mixed(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sorts by (namespace, name) and drops repeats, keeping the newest: a pod can be in two
    /// shards at once (a StatefulSet pod re-created on another node while its old node's
    /// points live on), and the old node's copy must not hide the new one.
    fn sort_and_dedup<P: PodItem>(rows: &mut Vec<P>) {
        rows.sort_by(|a, b| {
            (a.namespace(), a.name())
                .cmp(&(b.namespace(), b.name()))
                .then_with(|| b.timestamp_ns().cmp(&a.timestamp_ns()))
        });
        rows.dedup_by(|later, kept| later.namespace() == kept.namespace() && later.name() == kept.name());
    }
}

/// A page of a pod list: the rows and, when more follow, the key of the last one.
pub struct PodList {
    pub rows: PodRows,
    pub next: Option<(String, String)>,
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
            swap_bytes: self.metrics.usage.swap_bytes,
        }
    }
}

/// Reads over the replica set's data.
#[derive(Clone)]
pub struct Reader {
    pub caches: Arc<Caches>,
    pub shards: Arc<ShardSet>,
    /// `--node-selector`, ANDed with request selectors on node lists.
    pub node_selector: LabelSelector,
    /// The peers to fan out to; `None` with one replica.
    pub fanout: Option<Arc<dyn Fanout>>,
}

/// The replica set's side of a read, implemented by `crate::ha::Ha`: shards answered by their
/// owners wherever they are, this replica's own through `local`.
pub trait Fanout: Send + Sync {
    /// Reads `shards` for `target`; shards nobody answered in time are left out (a partial
    /// answer), never an error.
    fn gather<'a>(
        &'a self,
        local: &'a Reader,
        shards: Vec<u32>,
        target: QueryTarget,
    ) -> std::pin::Pin<Box<dyn Future<Output = QueryResponse> + 'a>>;

    /// Whether every shard has a source the replica set can answer from now (the readiness of
    /// a replica that holds no shard itself).
    fn can_answer(&self) -> bool;

    /// Splits `shards` into those this replica answers for from its own stores, asking nobody
    /// (after waiting, briefly, for what they have staged), and those to [`Fanout::gather`].
    fn split_local<'a>(
        &'a self,
        shards: Vec<u32>,
    ) -> std::pin::Pin<Box<dyn Future<Output = (Vec<u32>, Vec<u32>)> + 'a>>;
}

/// Whether a pod matches the field selector; `node` gives the node that reported it (looked up
/// only if the selector names `spec.nodeName`).
fn pod_fields_match<'v>(
    fields: &FieldSelector,
    namespace: &'v str,
    name: &'v str,
    node_of: impl Fn() -> Option<&'v str>,
) -> bool {
    let node = std::cell::OnceCell::new();
    fields.matches(|f| match f {
        "metadata.name" => Some(name),
        "metadata.namespace" => Some(namespace),
        params::NODE_NAME_FIELD => *node.get_or_init(&node_of),
        _ => None,
    })
}

/// What a read asks of the shards' data.
pub struct PodQuery<'a> {
    pub namespace: Option<&'a str>,
    pub name: Option<&'a str>,
    pub params: &'a ListParams,
    /// The raw query string, for owners that parse it again.
    pub query: &'a str,
}

impl Reader {
    fn all_shards(&self) -> Vec<u32> {
        (0..self.shards.shards).collect()
    }

    /// Servable node metrics by node name, from the shards' owners.
    async fn node_metrics(&self, shards: Vec<u32>) -> std::collections::HashMap<String, NodeMetrics> {
        match &self.fanout {
            None => self.local_node_metrics(&shards),
            Some(ha) => {
                let (local, remote) = ha.split_local(shards).await;
                let mut metrics = self.local_node_metrics(&local);
                if !remote.is_empty() {
                    let answer = ha.gather(self, remote, QueryTarget::Nodes).await;
                    metrics.extend(answer.nodes.iter().map(|n| (n.name.clone(), answer::node_metrics(n))));
                }
                metrics
            }
        }
    }

    /// Servable node metrics of `shards` from this replica's stores.
    fn local_node_metrics(&self, shards: &[u32]) -> std::collections::HashMap<String, NodeMetrics> {
        shards
            .iter()
            .flat_map(|&s| {
                let store = self.shards.stores[s as usize].read().expect("store lock");
                store.nodes().map(|(n, m)| (n.to_string(), m)).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Nodes in the cache that match, with servable metrics, sorted by name.
    /// One page of them with `limit`.
    pub async fn list_nodes(&self, params: &ListParams) -> page::Page<NodeRow> {
        let metrics = self.node_metrics(self.all_shards()).await;
        let nodes = self.caches.nodes.read().expect("nodes lock");
        let after = params.after().map(|(_, name)| name);
        let mut rows: Vec<NodeRow> = nodes
            .nodes
            .values()
            .filter(|n| after.is_none_or(|after| &*n.name > after))
            .filter(|n| params.labels.matches(&n.labels) && self.node_selector.matches(&n.labels))
            .filter(|n| params.fields.matches(|f| (f == "metadata.name").then_some(&*n.name)))
            .filter_map(|n| {
                Some(NodeRow {
                    name: n.name.clone(),
                    labels: n.labels.clone(),
                    metrics: *metrics.get(&*n.name)?,
                })
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        page::cut(rows, params.limit, |r| ("", &*r.name))
    }

    /// One node: `NodeNotFound` if the cache has no such node, `NodeMetricsNotFound` if it has
    /// no servable metrics.
    pub async fn get_node(&self, name: &str) -> Result<NodeRow, ApiError> {
        let (node_name, labels) = {
            let nodes = self.caches.nodes.read().expect("nodes lock");
            let node = nodes
                .nodes
                .get(name)
                .ok_or_else(|| ApiError::NodeNotFound { name: name.to_string() })?;
            (node.name.clone(), node.labels.clone())
        };
        let metrics = self.node_metrics(vec![self.shards.shard_of(name)]).await;
        let metrics = metrics.get(name).copied();
        let metrics = metrics.ok_or_else(|| ApiError::NodeMetricsNotFound { name: name.to_string() })?;
        Ok(NodeRow {
            name: node_name,
            labels,
            metrics,
        })
    }

    /// This replica's matching pods of `shards` (one-replica reads), unsorted.
    pub fn local_pods(&self, shards: &[u32], query: &PodQuery<'_>) -> Vec<(u32, PodRow)> {
        let mut rows = Vec::new();
        self.visit_local_pods(shards, query, |shard, ns, name, meta, metrics| {
            let row = PodRow {
                namespace: ns.clone(),
                name: name.clone(),
                labels: meta.labels.clone(),
                metrics,
            };
            rows.push((shard, row));
        });
        rows
    }

    /// Calls `visit` with every matching pod of `shards` this replica holds, as `(shard,
    /// namespace, name, cached metadata, metrics)`, under the cache's and the store's read locks.
    /// A page after a continue token visits only the pods after its key; `spec.nodeName=NODE`
    /// visits only the pods that node's scrape reported.
    pub fn visit_local_pods(
        &self,
        shards: &[u32],
        query: &PodQuery<'_>,
        mut visit: impl FnMut(u32, &Arc<str>, &Arc<str>, &PodMeta, PodMetrics),
    ) {
        let pods = self.caches.pods.read().expect("pods lock");
        let after = query.params.after();
        let on_nodes = query.params.node_names();
        for &shard in shards {
            let store = self.shards.stores[shard as usize].read().expect("store lock");
            let mut one = |ns: &str, name: &str, metrics: PodMetrics| {
                if after.is_some_and(|after| (ns, name) <= after) {
                    return;
                }
                let Some((ns, name, meta)) = pods.get(ns, name) else {
                    return;
                };
                let node_of = || store.node_of(ns, name);
                if query.params.labels.matches(meta) && pod_fields_match(&query.params.fields, ns, name, node_of) {
                    visit(shard, ns, name, meta, metrics);
                }
            };
            let in_scope =
                |ns: &str, name: &str| query.namespace.is_none_or(|n| n == ns) && query.name.is_none_or(|n| n == name);
            match (&on_nodes, query.namespace, query.name) {
                (Some(nodes), _, _) => nodes
                    .iter()
                    .flat_map(|node| store.pods_on(node))
                    .filter(|(ns, name, _)| in_scope(ns, name))
                    .for_each(|(ns, name, m)| one(ns, name, m)),
                (None, Some(ns), Some(name)) => {
                    if let Some(m) = store.pod(ns, name) {
                        one(ns, name, m)
                    }
                }
                (None, Some(ns), None) => store.pods_in(ns).for_each(|(name, m)| one(ns, name, m)),
                (None, None, _) => store.pods().for_each(|(ns, name, m)| one(ns, name, m)),
            }
        }
    }

    /// The shards a pod read asks: the one of the node `spec.nodeName=NODE` names (the pods of a
    /// node are stored with its shard), none if the selector names two nodes, else all.
    fn pod_shards(&self, query: &PodQuery<'_>) -> Vec<u32> {
        match query.params.node_names() {
            Some(nodes) => nodes.iter().map(|n| self.shards.shard_of(n)).collect(),
            None => self.all_shards(),
        }
    }

    async fn pods(&self, query: &PodQuery<'_>) -> PodList {
        let shards = self.pod_shards(query);
        if shards.is_empty() {
            return PodList {
                rows: PodRows::Local(Vec::new()),
                next: None,
            };
        }
        let limit = query.params.limit;
        let Some(ha) = &self.fanout else {
            return self.local_list(&shards, query);
        };
        let (local, remote) = ha.split_local(shards).await;
        if remote.is_empty() {
            // Every shard held here: read as one replica reads.
            return self.local_list(&local, query);
        }
        let target = QueryTarget::Pods {
            namespace: query.namespace.map(String::from),
            name: query.name.map(String::from),
            query: query.query.to_string(),
        };
        let mut answer = ha.gather(self, remote, target).await;
        answer
            .pods
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        answer
            .pods
            .dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
        let gathered: Vec<GatheredPod> = {
            let pods = self.caches.pods.read().expect("pods lock");
            let known = |wire: WirePod| {
                let (_, _, meta) = pods.get(&wire.namespace, &wire.name)?;
                let labels = meta.labels.clone();
                Some(GatheredPod { labels, wire })
            };
            answer.pods.into_iter().filter_map(known).collect()
        };
        let own = self
            .local_pods(&local, query)
            .into_iter()
            .map(|(_, r)| AnyPod::Local(r));
        let mut rows: Vec<AnyPod> = own.chain(gathered.into_iter().map(AnyPod::Gathered)).collect();
        PodRows::sort_and_dedup(&mut rows);
        let page = page::cut(rows, limit, |r| (r.namespace(), r.name()));
        PodList {
            rows: PodRows::Mixed(page.items),
            next: page.next,
        }
    }

    /// A read of `shards` from this replica's stores alone.
    fn local_list(&self, shards: &[u32], query: &PodQuery<'_>) -> PodList {
        let mut rows: Vec<PodRow> = self.local_pods(shards, query).into_iter().map(|(_, r)| r).collect();
        PodRows::sort_and_dedup(&mut rows);
        let page = page::cut(rows, query.params.limit, |r| (&*r.namespace, &*r.name));
        PodList {
            rows: PodRows::Local(page.items),
            next: page.next,
        }
    }

    /// Running pods that match, with servable metrics, sorted by namespace and name; one page
    /// of them with `limit`.
    pub async fn list_pods(&self, namespace: Option<&str>, params: &ListParams, query: &str) -> PodList {
        self.pods(&PodQuery {
            namespace,
            name: None,
            params,
            query,
        })
        .await
    }

    /// One pod: `PodNotFound` unless Running in the cache, `PodMetricsNotFound` without metrics.
    pub async fn get_pod(
        &self,
        namespace: &str,
        name: &str,
        params: &ListParams,
        query: &str,
    ) -> Result<PodRows, ApiError> {
        let known = self
            .caches
            .pods
            .read()
            .expect("pods lock")
            .get(namespace, name)
            .is_some();
        if !known {
            return Err(ApiError::PodNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
        let rows = self
            .pods(&PodQuery {
                namespace: Some(namespace),
                name: Some(name),
                params,
                query,
            })
            .await
            .rows;
        if rows.is_empty() {
            Err(ApiError::PodMetricsNotFound {
                namespace: namespace.to_string(),
                name: name.to_string(),
            })
        } else {
            Ok(rows)
        }
    }

    /// Whether this replica's stores pass `metric-storage-ready` together (see
    /// [`shard::store::Readiness`]: what the kubelets report must be servable).
    pub fn ready(&self) -> bool {
        let readiness = self
            .shards
            .stores
            .iter()
            .fold(shard::store::Readiness::default(), |r, store| {
                r.merge(store.read().expect("store lock").readiness())
            });
        readiness.ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(name: &str, timestamp: i64) -> GatheredPod {
        GatheredPod {
            labels: Arc::new([]),
            wire: WirePod {
                shard: 0,
                namespace: "ns".into(),
                name: name.into(),
                timestamp,
                window: 1,
                containers: vec![],
            },
        }
    }

    #[test]
    fn a_pod_in_two_shards_keeps_its_newest_copy_whatever_the_order() {
        for order in [[10, 30], [30, 10]] {
            let mut rows = vec![gathered("b", 5), gathered("a", order[0]), gathered("a", order[1])];
            PodRows::sort_and_dedup(&mut rows);
            let kept: Vec<(&str, i64)> = rows.iter().map(|r| (r.name(), r.timestamp_ns())).collect();
            assert_eq!(kept, [("a", 30), ("b", 5)]);
        }
    }
}
