//! [`ShardSet`]: a replica's shards — one actor and one store per shard — and the mapping of
//! nodes to them. The API reads the stores directly; node changes become `SetTargets`.

use super::messages::SetTargets;
use super::shard::{SHARD_COUNT, ShardActor, ShardContext};
use crate::hash::shard_of;
use crate::scrape::{AddressPolicy, NodeInfo, ScrapeTarget};
use crate::selector::LabelSelector;
use crate::store::Store;
use actix::prelude::*;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

pub struct ShardSet {
    pub shards: u32,
    pub stores: Vec<Arc<RwLock<Store>>>,
    actors: Vec<Addr<ShardActor>>,
    /// What each shard was last told, to send only changes.
    sent: Mutex<Vec<Vec<ScrapeTarget>>>,
}

impl ShardSet {
    /// Starts one actor per shard on the current arbiter.
    pub fn start(shards: u32, ctx: Arc<ShardContext>) -> ShardSet {
        SHARD_COUNT.store(shards, Ordering::Relaxed);
        let resolution = ctx.resolution.as_nanos() as i64;
        let stores: Vec<_> = (0..shards)
            .map(|_| Arc::new(RwLock::new(Store::new(resolution))))
            .collect();
        let actors = stores
            .iter()
            .enumerate()
            .map(|(i, s)| ShardActor::new(i as u32, ctx.clone(), s.clone()).start())
            .collect();
        ShardSet {
            shards,
            stores,
            actors,
            sent: Mutex::new(vec![Vec::new(); shards as usize]),
        }
    }

    /// The store holding `node`'s points.
    pub fn store_of(&self, node: &str) -> &Arc<RwLock<Store>> {
        &self.stores[shard_of(node, self.shards) as usize]
    }

    /// Recomputes every shard's targets from the node list; unselected or unaddressable nodes
    /// are not scraped.
    pub fn set_nodes<'a>(
        &self,
        nodes: impl Iterator<Item = &'a NodeInfo>,
        policy: &AddressPolicy,
        selector: &LabelSelector,
    ) {
        let mut per_shard: Vec<Vec<ScrapeTarget>> = vec![Vec::new(); self.shards as usize];
        for node in nodes.filter(|n| selector.matches(&n.labels)) {
            match policy.resolve(node) {
                Ok(target) => per_shard[shard_of(&node.name, self.shards) as usize].push(target),
                Err(e) => tracing::warn!(error = %e, "node not scraped"),
            }
        }
        let mut sent = self.sent.lock().expect("sent lock");
        for (i, targets) in per_shard.into_iter().enumerate() {
            if sent[i] != targets {
                self.actors[i].do_send(SetTargets(targets.clone()));
                sent[i] = targets;
            }
        }
    }

    /// Nodes with a target, for tests and status.
    pub fn target_count(&self) -> usize {
        self.sent.lock().expect("sent lock").iter().map(Vec::len).sum()
    }
}
