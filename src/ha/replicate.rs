//! Standby replication and handoff. After every scrape cycle of a shard, its primary pushes the
//! shard's points to the standbys; when a shard moves, the old primary hands its points to the
//! new one. A receiver takes a push only from the shard's primary under its own map, or from a
//! sender with a newer map (fencing by epoch); points older than its own are never taken.

use super::Ha;
use super::wire::{PushAck, ShardPush, path};
use coordinator::shard_map::{MemberId, ShardMap};
use shard::actor::set::Stopped;
use shard::actor::shard::{CycleHook, now_nanos};
use shard::store::Missing;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Deadline of one push.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The shard actors' cycle hook: pushes the shard to its standbys once `cell` holds the `Ha`.
pub fn cycle_hook(cell: Arc<OnceLock<Weak<Ha>>>) -> CycleHook {
    Arc::new(move |shard| {
        if let Some(ha) = cell.get().and_then(Weak::upgrade) {
            ha.push_to_standbys(shard);
        }
    })
}

impl Ha {
    /// Sends one copy of the shard's points to each of `to`, taken once `after` (the shard's
    /// scraper stopping) resolved.
    fn push(&self, map: &ShardMap, shard: u32, to: &[MemberId], route: &'static str, after: Option<Stopped>) {
        let targets: Vec<(MemberId, String)> = to
            .iter()
            .filter_map(|&member| Some((member, self.address_of(map, member)?)))
            .collect();
        if targets.is_empty() {
            return;
        }
        let (from, epoch) = (self.me().0, map.epoch);
        let store = self.shards.stores[shard as usize].clone();
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Some(stopped) = after {
                stopped.await;
            }
            let snapshot = store.read().expect("store lock").snapshot();
            let push = ShardPush {
                from,
                epoch,
                shard,
                taken_at: now_nanos(),
                snapshot,
            };
            let (client, push) = (&client, &push);
            let calls = targets.iter().map(|(to, address)| async move {
                let ack: Result<PushAck, _> = client.call(address, route, push, PUSH_TIMEOUT).await;
                match ack {
                    Ok(PushAck::Accepted) => {}
                    Ok(PushAck::Stale { epoch }) => tracing::debug!(shard, to = %to, epoch, "push refused as stale"),
                    Err(e) => tracing::debug!(shard, to = %to, error = %e, "push failed"),
                }
            });
            futures::future::join_all(calls).await;
        });
    }

    /// After a scrape cycle: the primary's copy goes to each reachable standby.
    fn push_to_standbys(&self, shard: u32) {
        let map = self.current_map();
        let owners = map.owners(shard);
        if owners.first() != Some(&self.me()) {
            return;
        }
        let standbys: Vec<MemberId> = owners[1..].iter().copied().filter(|s| self.reachable(*s)).collect();
        self.push(&map, shard, &standbys, path::REPLICATE, None);
    }

    /// A shard this replica stopped scraping goes to its new owners (primary and standbys),
    /// with the last scrape of the stopped scraper (`stopped`). Readers that reached this
    /// replica saw that scrape; a new owner holding anything older would move their timestamps
    /// back (an answer stored after the copy was taken, or a standby whose last push came
    /// before this replica's last scrape).
    pub(super) fn hand_over(&self, map: &ShardMap, shard: u32, stopped: Option<Stopped>) {
        let owners: Vec<MemberId> = map.owners(shard).iter().copied().filter(|o| *o != self.me()).collect();
        tracing::debug!(shard, to = ?owners, "handing a shard over");
        self.push(map, shard, &owners, path::HANDOFF, stopped);
    }

    /// Hands every shard this replica holds to its owners under `map`, another replica set's
    /// map (before starting over to join it), and waits for the answers.
    pub(super) async fn hand_over_all(&self, map: &ShardMap) {
        let mut calls = Vec::new();
        for shard in 0..self.shards.shards.min(map.shard_count) {
            let store = self.shards.stores[shard as usize].read().expect("store lock");
            if !store.is_warm() {
                continue;
            }
            let push = ShardPush {
                from: self.me().0,
                epoch: map.epoch,
                shard,
                taken_at: now_nanos(),
                snapshot: store.snapshot(),
            };
            drop(store);
            for owner in map.owners(shard) {
                let Some(address) = self.address_of(map, *owner) else {
                    continue;
                };
                let (client, push) = (self.client.clone(), push.clone());
                calls.push(async move {
                    let ack: Result<PushAck, _> = client.call(&address, path::HANDOFF, &push, PUSH_TIMEOUT).await;
                    ack.is_ok_and(|a| matches!(a, PushAck::Accepted))
                });
            }
        }
        let sent = calls.len();
        let accepted = futures::future::join_all(calls)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        tracing::info!(sent, accepted, "handed this replica's shards to the other replica set");
    }

    /// Takes a push or hand-over unless the sender is fenced out.
    pub fn receive(&self, push: ShardPush, handoff: bool) -> PushAck {
        let map = self.current_map();
        let sender = MemberId(push.from);
        let sender_owns = map.primary(push.shard) == Some(&sender);
        let fenced = push.epoch < map.epoch && !sender_owns && !handoff;
        if fenced || push.shard >= self.shards.shards {
            return PushAck::Stale { epoch: map.epoch };
        }
        if self.shards.is_scraping(push.shard) && !handoff && !sender_owns {
            return PushAck::Stale { epoch: map.epoch };
        }
        let lag = (now_nanos() - push.taken_at).max(0) as f64 / 1e9;
        self.metrics.ha.replication_lag.set(lag);
        let store = &self.shards.stores[push.shard as usize];
        // A hand-over's sender may lack nodes it never scraped; the primary's push is the list.
        let missing = if handoff { Missing::Keep } else { Missing::Forget };
        let gone = store.write().expect("store lock").replace_from(push.snapshot, missing);
        tracing::debug!(shard = push.shard, from = %sender, handoff, gone = gone.len(), "took a shard copy");
        PushAck::Accepted
    }
}
