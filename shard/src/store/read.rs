//! The store's read side: what the query layer, readiness and `metrics_server_storage_points`
//! see. Everything is computed on the fly from the stored points, as metrics-server's
//! `GetNodeMetrics` / `GetPodMetrics` do; iteration order is the hash maps' (callers sort).

use super::pod::PodEntry;
use super::{NodeMetrics, PodMetrics, Store};

/// What some stores hold and can serve, for readiness (`metric-storage-ready`).
///
/// metrics-server v0.9 is ready when at least one node AND one pod have a previous point. That
/// took its whole API down on k3s, whose kubelets can report pods but no `node_*` series
/// (k3s#14554): pods were servable, readiness stayed red, the APIService went unavailable. Here
/// each kind must be servable only if some kubelet reports it: ready when something is servable,
/// node metrics are servable unless no kubelet reported a node point, and pod metrics are
/// servable unless no pod is held. So a fresh replica still waits for both kinds (as v0.9), and a
/// cluster whose kubelets report no node series (or that runs no pods) is ready with what it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Some node's last scrape had a node point.
    pub node_points: bool,
    /// Some node has a previous point.
    pub nodes_servable: bool,
    /// Some pod is held.
    pub pods_held: bool,
    /// Some pod has a previous point.
    pub pods_servable: bool,
}

impl Readiness {
    /// The readiness of several stores together.
    pub fn merge(self, other: Readiness) -> Readiness {
        Readiness {
            node_points: self.node_points || other.node_points,
            nodes_servable: self.nodes_servable || other.nodes_servable,
            pods_held: self.pods_held || other.pods_held,
            pods_servable: self.pods_servable || other.pods_servable,
        }
    }

    /// Whether `metric-storage-ready` passes.
    pub fn ready(self) -> bool {
        (self.nodes_servable || self.pods_servable)
            && (self.nodes_servable || !self.node_points)
            && (self.pods_servable || !self.pods_held)
    }
}

impl Store {
    /// A node's metrics: `None` for an unknown node, one without a previous point, or one whose
    /// rate fails (e.g. its CPU counter went backwards).
    pub fn node(&self, node: &str) -> Option<NodeMetrics> {
        let (name, entry) = self.nodes.get_key_value(node)?;
        self.fresh_node(name).then(|| entry.metrics())?
    }

    /// Every servable node.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, NodeMetrics)> + '_ {
        self.nodes
            .iter()
            .filter(|(name, _)| self.fresh_node(name))
            .filter_map(|(name, node)| Some((&**name, node.metrics()?)))
    }

    /// A pod's metrics: `None` for an unknown pod or one with a container that has no previous
    /// point. A container whose rate fails is left out of `containers`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodMetrics> {
        self.entry(namespace, name).filter(|p| self.fresh(p))?.metrics()
    }

    /// Every servable pod of one namespace, as `(name, metrics)`.
    pub fn pods_in<'s>(&'s self, namespace: &str) -> impl Iterator<Item = (&'s str, PodMetrics)> + use<'s> {
        let pods = self.namespaces.get(namespace).into_iter().flatten();
        pods.filter(|(_, pod)| self.fresh(pod))
            .filter_map(|(name, pod)| Some((&**name, pod.metrics()?)))
    }

    /// Every servable pod, as `(namespace, name, metrics)`.
    pub fn pods(&self) -> impl Iterator<Item = (&str, &str, PodMetrics)> + '_ {
        let pods = self
            .namespaces
            .iter()
            .flat_map(|(ns, pods)| pods.iter().map(move |(name, pod)| (ns, name, pod)));
        pods.filter(|(_, _, pod)| self.fresh(pod))
            .filter_map(|(ns, name, pod)| Some((&**ns, &**name, pod.metrics()?)))
    }

    /// Every servable pod last reported by `node`, as `(namespace, name, metrics)`.
    pub fn pods_on<'s>(&'s self, node: &str) -> impl Iterator<Item = (&'s str, &'s str, PodMetrics)> + use<'s> {
        let entry = self.nodes.get_key_value(node);
        let listed = entry
            .into_iter()
            .flat_map(|(node, entry)| entry.pods.iter().map(move |key| (node, key)));
        listed.filter_map(|(node, (ns, name))| {
            let pod = self
                .entry(ns, name)
                .filter(|pod| pod.node == *node && self.fresh(pod))?;
            Some((&**ns, &**name, pod.metrics()?))
        })
    }

    /// The node whose scrape reported the pod last, if the pod is stored (servable or not).
    pub fn node_of(&self, namespace: &str, name: &str) -> Option<&str> {
        Some(&*self.entry(namespace, name)?.node)
    }

    /// `metrics_server_storage_points`: `(type="node", type="container")`, the nodes and
    /// containers that have a previous point (servable unless their rate fails).
    pub fn servable_counts(&self) -> (usize, usize) {
        let nodes = self.nodes.values().filter(|node| node.has_prev()).count();
        let containers = self.all_pods().map(PodEntry::containers_with_prev).sum();
        (nodes, containers)
    }

    /// `metric-storage-ready` for this store alone (see [`Readiness`]).
    pub fn ready(&self) -> bool {
        self.readiness().ready()
    }

    /// What this store holds and can serve, for `metric-storage-ready`.
    pub fn readiness(&self) -> Readiness {
        Readiness {
            node_points: self.nodes.values().any(|node| node.last.is_some()),
            nodes_servable: self.nodes.values().any(|node| node.has_prev()),
            pods_held: !self.namespaces.is_empty(),
            pods_servable: self.all_pods().any(PodEntry::has_prev),
        }
    }

    /// Whether the store holds any node, servable or not (`held_counts().0 > 0` without
    /// counting the pods: fan-outs ask it of every shard).
    pub fn holds_nodes(&self) -> bool {
        !self.nodes.is_empty()
    }

    /// Nodes and pods held, servable or not: `(nodes, pods)`.
    pub fn held_counts(&self) -> (usize, usize) {
        (self.nodes.len(), self.namespaces.values().map(|pods| pods.len()).sum())
    }

    /// Whether a node's points may be served (not marked stale).
    fn fresh_node(&self, node: &str) -> bool {
        self.stale.is_empty() || !self.stale.contains(node)
    }

    /// Whether a pod's points may be served: the node that reported it last is not stale.
    fn fresh(&self, pod: &PodEntry) -> bool {
        self.fresh_node(&pod.node)
    }

    fn entry(&self, namespace: &str, name: &str) -> Option<&PodEntry> {
        self.namespaces.get(namespace)?.get(name)
    }

    fn all_pods(&self) -> impl Iterator<Item = &PodEntry> + '_ {
        self.namespaces.values().flat_map(|pods| pods.values())
    }
}
