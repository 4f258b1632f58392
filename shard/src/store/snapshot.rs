//! Owned, serde-serialisable copies of one node's points and its pods' points. The primary pushes
//! them to the standby after every scrape and hands them to the new primary on rebalancing
//! (docs/architecture.md, "The serving rule"); a store restored from them serves identical answers.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::node::NodeEntry;
use super::pod::{ContainerEntry, PodEntry};
use super::{PodKey, Store, intern, intern_name};
use crate::point::{MetricsPoint, Nanos};

/// One node's entry and the pods it reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// Local time (Unix ns) the node's last successful scrape was stored.
    pub received: Nanos,
    pub last: Option<MetricsPoint>,
    pub prev: Option<MetricsPoint>,
    pub pods: Vec<PodSnapshot>,
}

/// One pod's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodSnapshot {
    pub namespace: String,
    pub name: String,
    /// Local time (Unix ns) the pod's last report was stored.
    pub received: Nanos,
    pub containers: Vec<ContainerSnapshot>,
}

/// One container's points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSnapshot {
    pub name: String,
    pub last: MetricsPoint,
    pub prev: Option<MetricsPoint>,
}

impl Store {
    /// A copy of `node`'s points and of the pods it owns, or `None` for an unknown node.
    pub fn snapshot_node(&self, node: &str) -> Option<NodeSnapshot> {
        let entry = self.nodes.get(node)?;
        let pods = entry.pods.iter().filter_map(|(ns, name)| {
            let pod = self
                .namespaces
                .get(&**ns)?
                .get(&**name)
                .filter(|pod| &*pod.node == node)?;
            Some(PodSnapshot {
                namespace: ns.to_string(),
                name: name.to_string(),
                received: pod.received,
                containers: pod.containers.iter().map(ContainerSnapshot::from).collect(),
            })
        });
        Some(NodeSnapshot {
            received: entry.received,
            last: entry.last,
            prev: entry.prev,
            pods: pods.collect(),
        })
    }

    /// Replaces `node`'s entry and pods with a snapshot. A pod that another node reported more
    /// recently than the snapshot keeps its newer entry (the last report wins).
    pub fn restore_node(&mut self, node: &str, snapshot: NodeSnapshot) {
        self.remove_node(node);
        let (node, _) = intern(&mut self.nodes, node);
        let pods = snapshot
            .pods
            .into_iter()
            .filter_map(|pod| self.restore_pod(&node, pod))
            .collect();
        let entry = self.nodes.entry_ref(&*node).or_default();
        *entry = NodeEntry {
            last: snapshot.last,
            prev: snapshot.prev,
            received: snapshot.received,
            pods,
        };
    }

    fn restore_pod(&mut self, node: &Arc<str>, pod: PodSnapshot) -> Option<PodKey> {
        let newer_elsewhere = self
            .namespaces
            .get(pod.namespace.as_str())
            .and_then(|pods| pods.get(pod.name.as_str()));
        if newer_elsewhere.is_some_and(|other| other.node != *node && other.received > pod.received) {
            return None;
        }
        let mut containers: Vec<ContainerEntry> = pod.containers.iter().map(|c| self.restored(c)).collect();
        containers.sort_by(|a, b| a.name.cmp(&b.name));
        containers.dedup_by(|a, b| a.name == b.name);
        let (namespace, pods) = intern(&mut self.namespaces, &pod.namespace);
        let (name, entry) = intern(pods, &pod.name);
        *entry = PodEntry {
            node: node.clone(),
            received: pod.received,
            seen: 0,
            containers,
        };
        Some((namespace, name))
    }

    fn restored(&mut self, c: &ContainerSnapshot) -> ContainerEntry {
        ContainerEntry::new(intern_name(&mut self.names, &c.name), c.last, c.prev)
    }
}

impl From<&ContainerEntry> for ContainerSnapshot {
    fn from(c: &ContainerEntry) -> Self {
        Self {
            name: c.name.to_string(),
            last: c.last,
            prev: c.prev,
        }
    }
}

/// What [`Store::replace_from`] does with nodes the incoming copy does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Forget,
    Keep,
}

/// A whole shard's points: what a primary pushes to its standby after every scrape cycle and
/// hands to the next primary on rebalancing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    pub nodes: Vec<(String, NodeSnapshot)>,
    /// Nodes not to be served until renewed (see `Store::mark_stale`).
    #[serde(default)]
    pub stale: Vec<String>,
}

impl ShardSnapshot {
    /// The newest kubelet timestamp in a node's snapshot: its own point, else its pods'.
    pub fn newest(node: &NodeSnapshot) -> Nanos {
        let pods = node.pods.iter().flat_map(|p| &p.containers).map(|c| c.last.timestamp);
        node.last.iter().map(|p| p.timestamp).chain(pods).max().unwrap_or(0)
    }
}

impl ShardSnapshot {
    /// Whether a node's copy has two points somewhere (its own or a container's).
    fn servable(node: &NodeSnapshot) -> bool {
        node.prev.is_some() || node.pods.iter().flat_map(|p| &p.containers).any(|c| c.prev.is_some())
    }
}

impl Store {
    /// The names of the nodes held.
    pub fn node_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.nodes.keys().map(|n| &**n)
    }

    /// A copy of every node's points.
    pub fn snapshot(&self) -> ShardSnapshot {
        let nodes = self
            .nodes
            .keys()
            .filter_map(|node| Some((node.to_string(), self.snapshot_node(node)?)))
            .collect();
        let stale = self.stale.iter().map(|n| n.to_string()).collect();
        ShardSnapshot { nodes, stale }
    }

    /// Takes a holder's copy of the shard: nodes it has replace ours unless ours are newer (so
    /// a late copy never moves a timestamp backwards); with [`Missing::Forget`] (the primary's
    /// push: its node list is the shard's) nodes it does not have are forgotten, with
    /// [`Missing::Keep`] (a hand-over from a holder that may have stopped scraping some nodes
    /// earlier, or never started) they stay. Returns the nodes forgotten.
    pub fn replace_from(&mut self, snapshot: ShardSnapshot, missing: Missing) -> Vec<String> {
        let keep: std::collections::HashSet<&str> = snapshot.nodes.iter().map(|(n, _)| n.as_str()).collect();
        let gone: Vec<String> = match missing {
            Missing::Forget => self
                .nodes
                .keys()
                .filter(|n| !keep.contains(&***n))
                .map(|n| n.to_string())
                .collect(),
            Missing::Keep => Vec::new(),
        };
        for node in &gone {
            self.remove_node(node);
        }
        let stale: std::collections::HashSet<String> = snapshot.stale.into_iter().collect();
        for (node, incoming) in snapshot.nodes {
            // A servable copy beats a lone point, then the newer copy wins. A lone first point
            // (a new primary's first scrape racing the hand-over, or a replica back from a
            // freeze scraping once more) would hide the node's pods for an interval; it was
            // never served, so keeping or taking the servable copy moves nothing back.
            if self.takes(&node, &incoming) {
                self.restore_node(&node, incoming);
                if stale.contains(&node) {
                    self.mark_stale([node.as_str()]);
                }
            }
        }
        gone
    }

    /// Whether a holder's copy of `node` should replace ours: a servable copy beats a lone point,
    /// then the newer copy wins (on a tie, the incoming one).
    pub fn takes(&self, node: &str, incoming: &NodeSnapshot) -> bool {
        let rank = |copy: &NodeSnapshot| (ShardSnapshot::servable(copy), ShardSnapshot::newest(copy));
        self.snapshot_node(node)
            .is_none_or(|ours| rank(incoming) >= rank(&ours))
    }

    /// Forgets everything (the shard left this replica); returns the nodes that were held.
    pub fn clear(&mut self) -> Vec<String> {
        let nodes = self.node_names().map(String::from).collect();
        *self = Store::new(self.resolution);
        nodes
    }
}
