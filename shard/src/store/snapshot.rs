//! Owned, serde-serialisable copies of one node's points and its pods' points. The primary pushes
//! them to the standby after every scrape and hands them to the new primary on rebalancing
//! (DESIGN.md "Failover without gaps"); a store restored from them serves identical answers.

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
