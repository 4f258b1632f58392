//! The shard's two-point store: for every node and container it keeps the last two points a
//! kubelet reported and computes what can be served, with metrics-server's rules
//! (`pkg/storage/{node,pod,types}.go` in metrics-server v0.8). Pure: no IO, no clocks, no
//! logging. Flow: with one replica the scraper actor passes each node's parsed scrape to
//! [`Store::insert_node`]; with peers it stages it as an [`Op`] ([`Store::stage_begin`]), the
//! replication path sends the op to the standbys and applies it to every copy in the same order
//! ([`Store::apply`], `ops.rs`, `stage.rs`). The query layer reads [`Store::node`], [`Store::pod`] and the list
//! iterators; hand-overs and takeovers move whole copies ([`Store::snapshot`],
//! [`Store::replace_from`], `snapshot.rs`). docs/architecture.md has the serving rule this
//! staging exists for.
//!
//! # Rules kept from metrics-server
//!
//! Node rule, container rule with the fresh-container shortcut and restart detection, rate maths,
//! "every container needs a previous point or the pod is omitted", pod timestamp and window from
//! the container with the earliest newer point, `storage_points` counts.
//!
//! # Deliberate differences
//!
//! - **Per node, not per tick.** metrics-server rebuilds its store from one cluster-wide batch and
//!   forgets whatever is absent. Here each node's scrape updates that node's entries in place; the
//!   pods a node reported last time but not now are forgotten, other nodes are untouched.
//! - **A failed scrape hides nothing**: the store is not told about it at all, so the last good
//!   points are served until [`Store::expire`] drops them, measured by the local time the scrape was stored (not the
//!   kubelet's sample time, so a kubelet's clock skew cannot expire fresh data). The next good
//!   scrape pairs with the last good one: the window spans the gap.
//! - **A pod reported by two nodes: the last report wins** (metrics-server: the first to arrive
//!   within a tick). The pod's previous points survive the move only as the container rule allows:
//!   a container started after its last point (a re-created pod) gets no previous point, and a
//!   start time that went backwards fails the rate. The old node's next scrape does not forget a
//!   pod that another node now reports. Within one scrape a repeated pod or container keeps its
//!   first point, as metrics-server does.
//! - **Deterministic output**: containers are sorted by name (Go's map order is random), so equal
//!   earliest timestamps resolve to the first container by name.
//! - **Exact rate**: integer division instead of `float64`, saturating at `u64::MAX`; a pair whose
//!   window is not positive (only possible from restored points) is an error, not ±Inf.
//! - metrics-server's out-of-order branch can pair a container that has no previous point of its
//!   own with Go's zero point (year 1) when a sibling container has one; here it gets none.
//! - A start time of 0 means unknown and never takes the fresh-container shortcut.
//! - Whole-pod accuracy (metrics-server PR #1781): a pod one of whose containers' rate fails, or
//!   that lacks a container its previous report had, is omitted (metrics-server serves it
//!   without that container, under-reported).
//! - Readiness ([`Readiness`]): each kind must be servable only if a kubelet reports it
//!   (metrics-server: ≥ 1 node AND ≥ 1 pod with a previous point).
//! - Rate errors are not logged here (metrics-server logs one on every read).
//! - **A point older than the stored last point is ignored** (a kubelet whose clock went back):
//!   the last two points stay as they are and keep being served. metrics-server stores it as the
//!   new last point, so the served timestamp goes back (or the pod disappears when the point is
//!   older than the previous one too); a timestamp that goes back makes the VPA drop the sample
//!   and the HPA reuse a window (docs/architecture.md, "The serving rule").

mod node;
mod ops;
mod pod;
mod rate;
mod read;
mod snapshot;
mod stage;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use hashbrown::hash_map::EntryRef;
use hashbrown::{HashMap, HashSet};

use crate::point::{MetricsPoint, NANOS_PER_SECOND, Nanos};
use node::NodeEntry;
use pod::PodEntry;

pub use ops::{Op, OpError, encode_scrape};
pub use rate::{Rate, RateError, Usage, rate};
pub use read::Readiness;
pub use snapshot::{ContainerSnapshot, Missing, NodeSnapshot, PodSnapshot, ShardSnapshot};

/// A container at least this old (and younger than the resolution) is served after one scrape.
pub const FRESH_CONTAINER_MIN_AGE: Nanos = 10 * NANOS_PER_SECOND;

/// One node's successful scrape, borrowed from the parser's output.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeScrape<'a> {
    /// The node's own point; `None` when the kubelet reported none (the node is then forgotten,
    /// its pods are still stored).
    pub node: Option<MetricsPoint>,
    pub pods: &'a [PodScrape<'a>],
}

/// One pod of a node's scrape.
#[derive(Debug, Clone, Copy)]
pub struct PodScrape<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    /// `(container name, point)`, in any order.
    pub containers: &'a [(&'a str, MetricsPoint)],
}

/// A node's servable metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeMetrics {
    /// The newer point's sample time (Unix ns).
    pub timestamp: Nanos,
    /// Newer minus older sample time (ns).
    pub window: Nanos,
    pub usage: Usage,
}

/// A pod's servable metrics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PodMetrics {
    /// The earliest newer point among the served containers (Unix ns); 0 if none is served.
    pub timestamp: Nanos,
    /// That container's window (ns); 0 if none is served.
    pub window: Nanos,
    /// Sorted by container name.
    pub containers: Vec<(Arc<str>, Usage)>,
}

/// `(namespace, name)` of a pod, sharing the store's interned strings.
pub(crate) type PodKey = (Arc<str>, Arc<str>);

/// The last two points of the nodes and pods one replica scrapes or stands by for.
#[derive(Debug, Clone)]
pub struct Store {
    /// `--metric-resolution` in ns: bounds the fresh-container shortcut.
    resolution: Nanos,
    nodes: HashMap<Arc<str>, NodeEntry>,
    /// Namespace -> pod name -> entry.
    namespaces: HashMap<Arc<str>, HashMap<Arc<str>, PodEntry>>,
    /// Container names, shared by every container of that name (most pods repeat their
    /// deployment's names); unused ones are released by `expire`.
    names: HashSet<Arc<str>>,
    /// Incremented by every `insert_node`.
    seq: u64,
    /// Nodes whose points came from a copy that may be older than what the replica set served
    /// (taken over from holders none of which had the writer's whole copy): not served until
    /// this store's next scrape or update of the node renews them (see `stage.rs`).
    stale: HashSet<Arc<str>>,
    /// Scrapes staged by the shard's writer and not yet published (see `stage.rs`): a read
    /// waits until none is left, so it never misses points a standby may already serve.
    pending: usize,
    /// Reused for the pod list of the node being inserted, so steady scrapes do not allocate.
    scratch: Vec<PodKey>,
}

impl Store {
    /// An empty store for `--metric-resolution` `resolution` (ns).
    pub fn new(resolution: Nanos) -> Self {
        Self {
            resolution,
            nodes: HashMap::new(),
            namespaces: HashMap::new(),
            names: HashSet::new(),
            seq: 0,
            stale: HashSet::new(),
            pending: 0,
            scratch: Vec::new(),
        }
    }

    pub fn resolution(&self) -> Nanos {
        self.resolution
    }

    /// Stores one node's successful scrape, received at local time `now` (Unix ns): the node rule
    /// for the node's point, the container rule for every pod; the pods this node reported last
    /// time and no longer reports are forgotten.
    pub fn insert_node(&mut self, node: &str, scrape: NodeScrape<'_>, now: Nanos) {
        self.seq += 1;
        self.stale.remove(node);
        let (node, entry) = intern(&mut self.nodes, node);
        entry.update(scrape.node, now);
        let mut reported = std::mem::take(&mut self.scratch);
        for pod in scrape.pods {
            reported.extend(self.update_pod(&node, pod, now));
        }
        let entry = self.nodes.entry_ref(&*node).or_default();
        let mut previous = std::mem::replace(&mut entry.pods, reported);
        self.forget_owned(&node, &previous, Some(self.seq));
        previous.clear();
        self.scratch = previous;
    }

    /// Drops the nodes and pods whose last successful scrape was stored more than `max_age` before
    /// `now` (the caller passes 2 x resolution), and releases container names no longer used.
    pub fn expire(&mut self, now: Nanos, max_age: Nanos) {
        let cutoff = now.saturating_sub(max_age);
        self.nodes.retain(|name, node| {
            let keep = node.received >= cutoff;
            if !keep {
                tracing::debug!(node = %name, age_ms = (now - node.received) / 1_000_000, "node expired");
            }
            keep
        });
        let nodes = &self.nodes;
        self.stale.retain(|n| nodes.contains_key(n));
        self.namespaces.retain(|_, pods| {
            pods.retain(|_, pod| pod.received >= cutoff);
            !pods.is_empty()
        });
        self.names.retain(|name| Arc::strong_count(name) > 1);
    }

    /// Whether [`Store::expire`] with these arguments would drop anything (a writer with
    /// standbys stages an expiry only then: most ticks expire nothing).
    pub fn expires_anything(&self, now: Nanos, max_age: Nanos) -> bool {
        let cutoff = now.saturating_sub(max_age);
        self.nodes.values().any(|node| node.received < cutoff)
            || self
                .namespaces
                .values()
                .any(|pods| pods.values().any(|pod| pod.received < cutoff))
    }

    /// Forgets a node and the pods it reported (node deleted, or its shard handed away).
    pub fn remove_node(&mut self, node: &str) {
        self.stale.remove(node);
        if let Some(entry) = self.nodes.remove(node) {
            self.forget_owned(node, &entry.pods, None);
        }
    }

    /// Applies one pod of `node`'s scrape; returns its key unless the pod was already reported by
    /// this scrape (the first report wins, as metrics-server keeps the first duplicate).
    fn update_pod(&mut self, node: &Arc<str>, pod: &PodScrape<'_>, now: Nanos) -> Option<PodKey> {
        let (seq, resolution) = (self.seq, self.resolution);
        let (namespace, pods) = intern(&mut self.namespaces, pod.namespace);
        let (name, entry) = intern(pods, pod.name);
        if entry.seen == seq {
            return None;
        }
        if entry.node != *node {
            entry.node = node.clone();
        }
        entry.seen = seq;
        // A report all of whose points are older than the stored ones (a kubelet whose clock
        // went back) changes nothing, not even when the pod was last seen: a kubelet stuck in the
        // past lets its pods expire.
        if entry.update(pod.containers, resolution, &mut self.names) {
            entry.received = now;
        }
        Some((namespace, name))
    }

    /// Removes the listed pods that `node` still owns, except those reported by scrape `keep`.
    fn forget_owned(&mut self, node: &str, listed: &[PodKey], keep: Option<u64>) {
        for (namespace, name) in listed {
            let Some(pods) = self.namespaces.get_mut(&**namespace) else {
                continue;
            };
            if pods
                .get(&**name)
                .is_some_and(|pod| &*pod.node == node && Some(pod.seen) != keep)
            {
                pods.remove(&**name);
                if pods.is_empty() {
                    self.namespaces.remove(&**namespace);
                }
            }
        }
    }
}

/// The entry for `key`, inserted with its default if absent, and the map's own copy of the key:
/// a name is allocated only the first time it is seen.
fn intern<'m, V: Default>(map: &'m mut HashMap<Arc<str>, V>, key: &str) -> (Arc<str>, &'m mut V) {
    match map.entry_ref(key) {
        EntryRef::Occupied(entry) => (entry.key().clone(), entry.into_mut()),
        EntryRef::Vacant(entry) => {
            let entry = entry.insert_entry(V::default());
            (entry.key().clone(), entry.into_mut())
        }
    }
}

/// The shared copy of a container name, allocated the first time the name is seen.
fn intern_name(names: &mut HashSet<Arc<str>>, name: &str) -> Arc<str> {
    names.get_or_insert_with(name, |name: &str| Arc::from(name)).clone()
}
