//! Staging: with standbys, a writer's changes are not applied the moment they are made. The
//! shard actor stages each change as an [`Op`](super::Op) (`ops.rs`), counted as pending while it
//! may make something newer ([`Store::stage_begin`]); the replication path sends the ops to the
//! standbys and applies them here, in order, once they hold them ([`Store::apply`], then
//! [`Store::stage_end`]), or withholds them ([`Store::withhold`]). Readers wait while anything
//! is pending ([`Store::pending`]), so no reader serves an older copy than a standby may already
//! serve (docs/architecture.md, "Serving rule").
//!
//! Copies that cross replicas carry the sender's wall clock in their `received` fields;
//! [`ShardSnapshot::shift_received`] moves them onto the receiver's clock.

use super::Store;
use super::snapshot::{NodeSnapshot, ShardSnapshot};
use crate::point::Nanos;

impl Store {
    /// Counts one staged op that may make something newer (until [`Store::stage_end`]).
    pub fn stage_begin(&mut self) {
        self.pending += 1;
    }

    /// Ends one staged op counted by [`Store::stage_begin`] (applied, withheld or dropped).
    pub fn stage_end(&mut self) {
        self.pending = self.pending.saturating_sub(1);
    }

    /// A scrape of `node` that may not be served (no standby holds it) while its kubelet
    /// answered at `now`: the node's published copy stays, renewed so that it does not expire
    /// while the writer waits for a standby to take its copies again.
    pub fn withhold_node(&mut self, node: &str, now: Nanos) {
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

    /// Staged ops that may make something newer, not yet applied, withheld or dropped.
    pub fn pending(&self) -> usize {
        self.pending
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
