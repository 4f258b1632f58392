//! The writer's side of replication as a shard actor sees it. With standbys, every change to
//! the shard's store is staged as an [`Op`] and handed to the [`Publisher`] (the server's
//! replication), which sends it to the standbys and, once they hold it, applies it to this
//! store in the order staged ([`crate::actor::ShardSet::conclude`]); readers waiting for pending
//! ops are woken ([`wait_published`]).

use crate::store::{Op, Store};
use futures::future::BoxFuture;
use std::sync::RwLock;
use std::time::Duration;
use tokio::sync::Notify;

/// What becomes of a staged op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A standby holds it, or none can take the shard over with less: apply it and serve it.
    Publish,
    /// No standby holds it, and one may yet take the shard over from its own copy: serving it
    /// could hand readers a point the next writer lacks. A scrape is not stored; the node's
    /// published copy stays, renewed (`Store::withhold`).
    Withhold,
    /// A newer writer took the shard over: never apply it.
    Drop,
}

/// Replicates a shard writer's changes before they are applied.
pub trait Publisher: Send + Sync + 'static {
    /// Takes `op` of `shard` for replication; the future resolves once it was applied (or
    /// withheld, or dropped). `Err` gives the op back when nothing replicates (yet): the
    /// caller applies it itself.
    fn stage(&self, shard: u32, op: Op) -> Result<BoxFuture<'static, Verdict>, Op>;
}

/// Waits until `store` has no staged op pending, at most `timeout`; returns whether it has none.
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
