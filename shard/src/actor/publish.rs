//! The writer's side of replication as a shard actor sees it. With standbys, a node's scrape is
//! staged (computed, counted as pending, not served), handed to the [`Publisher`] (the server's
//! replication, which sends it to the standbys) and published when the publisher says so. The
//! store is written under its lock and readers waiting for pending copies are woken
//! ([`wait_published`]).

use crate::store::{NodeSnapshot, Store};
use futures::future::BoxFuture;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// What becomes of a staged copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A standby holds it, or none can take the shard over with less: serve it.
    Publish,
    /// No standby holds it, and one may yet take the shard over from its own copy: serving it
    /// could hand readers a point the next writer lacks. The node's published copy stays.
    Withhold,
    /// A newer writer took the shard over: never serve it.
    Drop,
}

/// Replicates a shard writer's copies before they are served.
pub trait Publisher: Send + Sync + 'static {
    /// A node's next copy: the future resolves once it may be served (or must be dropped).
    fn stage(&self, shard: u32, node: Arc<str>, copy: Arc<NodeSnapshot>) -> BoxFuture<'static, Verdict>;
    /// Nodes the shard stopped scraping (gone from its store).
    fn forget(&self, shard: u32, nodes: &[Arc<str>]);
}

/// Ends one staged copy of `node` in `store` and wakes the readers waiting for it.
pub(crate) fn finish(store: &RwLock<Store>, published: &Notify, node: &str, copy: NodeSnapshot, verdict: Verdict) {
    {
        let mut store = store.write().expect("store lock");
        match verdict {
            Verdict::Publish => store.publish_node(node, Some(copy)),
            Verdict::Withhold => store.withhold_node(node, copy.received),
            Verdict::Drop => store.publish_node(node, None),
        }
    }
    published.notify_waiters();
}

/// Waits until `store` has no staged copy left, at most `timeout`; returns whether it has none.
pub async fn wait_published(store: &RwLock<Store>, published: &Notify, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let woken = published.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if store.read().expect("store lock").pending() == 0 {
            return true;
        }
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            return store.read().expect("store lock").pending() == 0;
        }
    }
}

/// Shares `Arc`s with the actor's spawned publication tasks.
pub(crate) type Shared = (Arc<RwLock<Store>>, Arc<Notify>);
