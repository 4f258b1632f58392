//! Staging: with standbys, a writer's scrape is not served the moment it is parsed. The shard
//! actor computes the node's next copy with [`Store::preview_node`] (the store is unchanged),
//! counts it as pending, sends it to the standbys and publishes it with [`Store::publish_node`]
//! once they hold it. Readers wait while anything is pending ([`Store::pending`]), so no reader
//! serves an older copy than a standby may already serve (docs/architecture.md, "Serving rule").
//!
//! Copies that cross replicas carry the sender's wall clock in their `received` fields;
//! [`ShardSnapshot::shift_received`] moves them onto the receiver's clock.

use super::snapshot::{NodeSnapshot, ShardSnapshot};
use super::{NodeScrape, Store};
use crate::point::Nanos;

impl Store {
    /// What `node` will hold once `scrape` (stored at local time `now`) is applied, computed on
    /// a copy of the node's entry: the store itself does not change. A pod another node
    /// reported last is treated as new to this node (metrics-server forgets it just as well
    /// when it moves); everything else follows [`Store::insert_node`] exactly.
    pub fn preview_node(&self, node: &str, scrape: NodeScrape<'_>, now: Nanos) -> NodeSnapshot {
        let mut scratch = Store::new(self.resolution);
        if let Some(current) = self.snapshot_node(node) {
            scratch.restore_node(node, current);
        }
        scratch.insert_node(node, scrape, now);
        scratch.snapshot_node(node).expect("a node just inserted has an entry")
    }

    /// Counts one staged copy (until [`Store::publish_node`]).
    pub fn stage_begin(&mut self) {
        self.pending += 1;
    }

    /// Ends one staged copy: with `Some`, the copy replaces the node's entry (it is the node's
    /// successor, computed by [`Store::preview_node`]); with `None` it is dropped (the writer was
    /// fenced out, or the node is no longer scraped).
    pub fn publish_node(&mut self, node: &str, staged: Option<NodeSnapshot>) {
        self.pending = self.pending.saturating_sub(1);
        if let Some(snapshot) = staged {
            self.restore_node(node, snapshot);
        }
    }

    /// Ends one staged copy that may not be served (no standby holds it) while its kubelet
    /// answered at `now`: the node's published copy stays, renewed so that it does not expire
    /// while the writer waits for a standby to take its copies again.
    pub fn withhold_node(&mut self, node: &str, now: Nanos) {
        self.pending = self.pending.saturating_sub(1);
        let Some(entry) = self.nodes.get_mut(node) else {
            return;
        };
        entry.received = entry.received.max(now);
        for (namespace, name) in &entry.pods {
            let pod = self
                .namespaces
                .get_mut(&**namespace)
                .and_then(|pods| pods.get_mut(&**name));
            if let Some(pod) = pod.filter(|pod| &*pod.node == node) {
                pod.received = pod.received.max(now);
            }
        }
    }

    /// Marks nodes whose points must not be served until renewed: after a takeover, the nodes
    /// no holder with the previous writer's whole copy had (their points may be older than what
    /// that writer served). The node's next scrape or update clears the mark.
    pub fn mark_stale<'n>(&mut self, nodes: impl IntoIterator<Item = &'n str>) {
        for node in nodes {
            if let Some((name, _)) = self.nodes.get_key_value(node) {
                self.stale.insert(name.clone());
            }
        }
    }

    /// Whether `node` is marked stale.
    pub fn is_stale(&self, node: &str) -> bool {
        self.stale.contains(node)
    }

    /// Whether some node is marked stale.
    pub fn has_stale(&self) -> bool {
        !self.stale.is_empty()
    }

    /// Staged copies not yet published or dropped.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Applies a standby's update from the shard's writer: the nodes' new copies (each the
    /// successor of what the writer sent before, so it replaces ours unless ours is newer,
    /// which only a copy taken from an earlier holder can be) and the nodes it stopped scraping.
    pub fn apply_update(&mut self, nodes: Vec<(String, NodeSnapshot)>, forget: &[String]) {
        for node in forget {
            self.remove_node(node);
        }
        for (node, incoming) in nodes {
            let newer_here = self
                .snapshot_node(&node)
                .is_some_and(|ours| ShardSnapshot::newest(&ours) > ShardSnapshot::newest(&incoming));
            if !newer_here {
                self.restore_node(&node, incoming);
            }
        }
    }
}

impl NodeSnapshot {
    /// Adds `by` (ns) to every `received` time: `received - sender_now + receiver_now`.
    pub fn shift_received(&mut self, by: Nanos) {
        self.received = self.received.saturating_add(by);
        for pod in &mut self.pods {
            pod.received = pod.received.saturating_add(by);
        }
    }
}

impl ShardSnapshot {
    /// [`NodeSnapshot::shift_received`] for every node.
    pub fn shift_received(&mut self, by: Nanos) {
        for (_, node) in &mut self.nodes {
            node.shift_received(by);
        }
    }
}
