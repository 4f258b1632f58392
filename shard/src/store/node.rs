//! A node's entry (its last two points and the pods its last scrape reported) and metrics-server's
//! node rule for choosing the older of the two points (`nodeStorage.Store`, metrics-server v0.8
//! `pkg/storage/node.go`).

use super::rate::rate;
use super::{NodeMetrics, PodKey};
use crate::point::{MetricsPoint, Nanos};

/// What the store keeps for one node.
#[derive(Debug, Clone, Default)]
pub(super) struct NodeEntry {
    /// The newest point; `None` when the last scrape reported no node point (metrics-server
    /// forgets a node absent from a batch).
    pub last: Option<MetricsPoint>,
    /// The point before `last`, when the node rule allows one.
    pub prev: Option<MetricsPoint>,
    /// Local time (Unix ns) the last successful scrape was stored; drives expiry.
    pub received: Nanos,
    /// The pods the last scrape reported. A pod that has since moved to another node stays
    /// listed until this node's next scrape; `PodEntry::node` is the authority.
    pub pods: Vec<PodKey>,
}

impl NodeEntry {
    /// Applies the node rule to a newly scraped point; a point older than the last one is
    /// ignored (see the store's deliberate differences).
    pub fn update(&mut self, new: Option<MetricsPoint>, now: Nanos) {
        if let (Some(new), Some(last)) = (new, self.last)
            && new.timestamp < last.timestamp
        {
            return;
        }
        self.prev = new.and_then(|new| next_prev(&new, self.last.as_ref(), self.prev.as_ref()));
        self.last = new;
        self.received = now;
    }

    /// Whether the node counts as servable for `storage_points` and readiness: it has a previous
    /// point (metrics-server counts `len(prev)`, even if the rate then fails).
    pub fn has_prev(&self) -> bool {
        self.last.is_some() && self.prev.is_some()
    }

    /// The node's metrics, or `None` if it has no previous point or its rate fails.
    pub fn metrics(&self) -> Option<NodeMetrics> {
        let rate = rate(self.last.as_ref()?, self.prev.as_ref()?).ok()?;
        Some(NodeMetrics {
            timestamp: rate.timestamp,
            window: rate.window,
            usage: rate.usage,
        })
    }
}

/// The node rule: the point to keep as `prev` when `new` arrives and `last`/`prev` are stored.
///
/// - `new` newer than `last`: `last` becomes `prev`;
/// - else `prev` older than `new` is kept (an out-of-order point `prev < new < last`);
/// - else none (a repeated point, or one older than `prev`): not servable until the next scrape.
pub(super) fn next_prev(
    new: &MetricsPoint,
    last: Option<&MetricsPoint>,
    prev: Option<&MetricsPoint>,
) -> Option<MetricsPoint> {
    let last = last?;
    if new.timestamp > last.timestamp {
        return Some(*last);
    }
    prev.filter(|prev| prev.timestamp < new.timestamp).copied()
}
