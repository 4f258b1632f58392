//! The store's read side: what the query layer, readiness and `metrics_server_storage_points`
//! see. Everything is computed on the fly from the stored points, as metrics-server's
//! `GetNodeMetrics` / `GetPodMetrics` do; iteration order is the hash maps' (callers sort).

use super::pod::PodEntry;
use super::{NodeMetrics, PodMetrics, Store};

impl Store {
    /// A node's metrics: `None` for an unknown node, one without a previous point, or one whose
    /// rate fails (e.g. its CPU counter went backwards).
    pub fn node(&self, node: &str) -> Option<NodeMetrics> {
        self.nodes.get(node)?.metrics()
    }

    /// Every servable node.
    pub fn nodes(&self) -> impl Iterator<Item = (&str, NodeMetrics)> + '_ {
        self.nodes
            .iter()
            .filter_map(|(name, node)| Some((&**name, node.metrics()?)))
    }

    /// A pod's metrics: `None` for an unknown pod or one with a container that has no previous
    /// point. A container whose rate fails is left out of `containers`.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodMetrics> {
        self.entry(namespace, name)?.metrics()
    }

    /// Every servable pod of one namespace, as `(name, metrics)`.
    pub fn pods_in<'s>(&'s self, namespace: &str) -> impl Iterator<Item = (&'s str, PodMetrics)> + use<'s> {
        let pods = self.namespaces.get(namespace).into_iter().flatten();
        pods.filter_map(|(name, pod)| Some((&**name, pod.metrics()?)))
    }

    /// Every servable pod, as `(namespace, name, metrics)`.
    pub fn pods(&self) -> impl Iterator<Item = (&str, &str, PodMetrics)> + '_ {
        let pods = self
            .namespaces
            .iter()
            .flat_map(|(ns, pods)| pods.iter().map(move |(name, pod)| (ns, name, pod)));
        pods.filter_map(|(ns, name, pod)| Some((&**ns, &**name, pod.metrics()?)))
    }

    /// Every servable pod last reported by `node`, as `(namespace, name, metrics)`.
    pub fn pods_on<'s>(&'s self, node: &str) -> impl Iterator<Item = (&'s str, &'s str, PodMetrics)> + use<'s> {
        let entry = self.nodes.get_key_value(node);
        let listed = entry
            .into_iter()
            .flat_map(|(node, entry)| entry.pods.iter().map(move |key| (node, key)));
        listed.filter_map(|(node, (ns, name))| {
            let pod = self.entry(ns, name).filter(|pod| pod.node == *node)?;
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

    /// `metric-storage-ready`: at least one node and one pod have a previous point (metrics-server
    /// v0.9: node AND pod).
    pub fn ready(&self) -> bool {
        self.nodes.values().any(|node| node.has_prev()) && self.all_pods().any(PodEntry::has_prev)
    }

    /// Nodes and pods held, servable or not: `(nodes, pods)`.
    pub fn held_counts(&self) -> (usize, usize) {
        (self.nodes.len(), self.namespaces.values().map(|pods| pods.len()).sum())
    }

    fn entry(&self, namespace: &str, name: &str) -> Option<&PodEntry> {
        self.namespaces.get(namespace)?.get(name)
    }

    fn all_pods(&self) -> impl Iterator<Item = &PodEntry> + '_ {
        self.namespaces.values().flat_map(|pods| pods.values())
    }
}
