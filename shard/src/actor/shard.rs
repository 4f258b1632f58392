//! One shard actor: scrapes its nodes every resolution (starting at a jittered offset), parses
//! each answer and stores it. A failed kubelet is a partial result: logged, counted, and the
//! node's last good points stay until they are older than twice the resolution. With a
//! [`Publisher`] (standbys), every change to the store is staged as an op and applied once the
//! standbys hold it (`publish.rs`, `store/ops.rs`); a node stays in flight until then, so its
//! next scrape never overtakes it.

use super::messages::{Merge, Published, ScrapeDone, SetTargets, Stop};
use super::observer::ScrapeObserver;
use super::publish::Publisher;
use crate::parse::{self, Limits};
use crate::point::{Nanos, now_nanos};
use crate::scrape::{KubeletClient, ScrapeTarget};
use crate::store::{NodeScrape, NodeSnapshot, Op, PodScrape, Store, encode_scrape};
use actix::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// What every shard of a replica shares.
pub struct ShardContext {
    pub resolution: Duration,
    pub limits: Limits,
    pub client: KubeletClient,
    /// Bounds kubelet requests in flight across all shards.
    pub limiter: Arc<Semaphore>,
    pub observer: Arc<dyn ScrapeObserver>,
    /// Unix ns of the latest tick start of any shard (for `metric-collection-timely`).
    pub last_tick: Arc<AtomicI64>,
    /// Replicates each scrape before it is served (a replica with peers); `None` publishes at
    /// once.
    pub publisher: Option<Arc<dyn Publisher>>,
    /// How many shards the first ticks spread over (the replica's shard count).
    pub shard_count: u32,
}

/// Phases per resolution in which shards tick: the shards of a phase scrape together, so that
/// a writer's copies for one standby go in a few pushes per resolution instead of one per shard
/// (`src/ha/courier.rs` gathers a phase's pushes), while a replica's kubelets are still not
/// all asked at once (metrics-server asks every node at each tick).
pub const SCRAPE_PHASES: u32 = 8;
/// A tick this many resolutions after the previous one follows a stall of the process.
const STALLED_TICK: f64 = 1.5;
/// A scrape waits for a slot under `--kubelet-max-concurrency` at most this share of the
/// resolution; then it fails (counted) and the node's next tick tries again, so an overloaded
/// replica never leaves a node in flight, unscraped, for longer than one interval.
const SLOT_WAIT_SHARE: f64 = 0.5;

pub struct ShardActor {
    pub id: u32,
    ctx: Arc<ShardContext>,
    store: Arc<RwLock<Store>>,
    targets: BTreeMap<Arc<str>, ScrapeTarget>,
    in_flight: HashSet<Arc<str>>,
    tick_started: Option<Instant>,
    /// Ticks so far: the first does not expire anything, so points restored from a previous
    /// holder survive until this actor's own scrape renews them (continuous windows).
    ticks: u64,
    /// When the previous tick ran: a tick much later than one resolution after it means the
    /// process was frozen or starved, not that the kubelets stopped answering.
    previous_tick: Option<Instant>,
    /// A warm-up ([`ShardActor::warm_up`]): stores its scrapes without the publisher.
    warm: bool,
}

impl ShardActor {
    pub fn new(id: u32, ctx: Arc<ShardContext>, store: Arc<RwLock<Store>>) -> Self {
        ShardActor {
            id,
            ctx,
            store,
            targets: BTreeMap::new(),
            in_flight: HashSet::new(),
            tick_started: None,
            ticks: 0,
            previous_tick: None,
            warm: false,
        }
    }

    /// Makes this actor a warm-up: it scrapes and stores like any other, but publishes at once
    /// and replicates nothing (it is not the shard's writer). A replica that expects to write a
    /// shard it holds no copy of (its owners stopped answering and quorum-loss mode is near)
    /// so holds a point per pod when it starts writing, and its first scrape as the writer
    /// already gives rates. Its store is not authoritative: the caller must not serve it.
    pub fn warm_up(mut self) -> Self {
        self.warm = true;
        self
    }

    /// Where this actor's scrapes are staged; `None` stores them at once.
    fn publisher(&self) -> Option<Arc<dyn Publisher>> {
        self.ctx.publisher.clone().filter(|_| !self.warm)
    }

    /// The first tick's offset: shards spread over [`SCRAPE_PHASES`] phases of one resolution,
    /// the shards of one phase together.
    fn first_tick_delay(&self, shards: u32) -> Duration {
        let phases = SCRAPE_PHASES.min(shards.max(1));
        self.ctx
            .resolution
            .mul_f64(((self.id % phases) as f64 + 0.5) / phases as f64)
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        let now = now_nanos();
        self.ctx.last_tick.store(now, Ordering::Relaxed);
        let max_age = 2 * self.ctx.resolution.as_nanos() as Nanos;
        let since_previous = self.previous_tick.map(|t| t.elapsed());
        if since_previous.is_some_and(|s| s < self.ctx.resolution / 2) {
            // A tick missed during a stall, delivered in a burst with the current one.
            return;
        }
        self.previous_tick = Some(Instant::now());
        let resumed = since_previous.is_some_and(|s| s > self.ctx.resolution.mul_f64(STALLED_TICK));
        // After a stall every point looks old; keep them until this tick's scrapes renew them.
        // With standbys, an expiry is staged only when it drops something (most ticks do not).
        let due =
            || self.publisher().is_none() || self.store.read().expect("store lock").expires_anything(now, max_age);
        if self.ticks > 0 && !resumed && due() {
            self.change(None, Op::Expire { now, max_age }, ctx.address());
        }
        self.ticks += 1;
        self.tick_started = Some(Instant::now());
        let due: Vec<ScrapeTarget> = self
            .targets
            .values()
            .filter(|t| !self.in_flight.contains(&t.node))
            .cloned()
            .collect();
        for target in due {
            self.in_flight.insert(target.node.clone());
            self.spawn_scrape(target, ctx.address());
        }
        self.maybe_finish_tick();
    }

    fn spawn_scrape(&self, target: ScrapeTarget, addr: Addr<Self>) {
        let (client, limiter) = (self.ctx.client.clone(), self.ctx.limiter.clone());
        let slot_wait = self.ctx.resolution.mul_f64(SLOT_WAIT_SHARE);
        let observer = self.ctx.observer.clone();
        tokio::spawn(async move {
            let permit = tokio::time::timeout(slot_wait, limiter.acquire_owned()).await;
            let started = Instant::now();
            let result = match permit {
                Ok(_permit) => client.scrape(&target, now_nanos()).await,
                Err(_) => {
                    observer.scrape_overloaded();
                    Err(crate::scrape::ScrapeError::Overloaded(slot_wait))
                }
            };
            addr.do_send(ScrapeDone {
                node: target.node,
                result,
                took: started.elapsed(),
            });
        });
    }

    fn maybe_finish_tick(&mut self) {
        if self.in_flight.is_empty()
            && let Some(started) = self.tick_started.take()
        {
            self.ctx.observer.tick(started.elapsed());
        }
    }

    /// Parses one answer and stores it, or stages it with the publisher; returns whether the
    /// node is still in flight (staged), or why the answer was not usable.
    fn store_scrape(&self, node: &Arc<str>, body: &[u8], sent_at: Nanos, addr: Addr<Self>) -> Result<bool, String> {
        let batch = parse::decode(body, sent_at, &self.ctx.limits).map_err(|e| e.to_string())?;
        let dropped = u64::from(batch.stats.malformed_lines) + u64::from(batch.stats.invalid_values);
        if dropped > 0 {
            self.ctx.observer.dropped_series(node, dropped);
            tracing::debug!(node = &**node, malformed = batch.stats.malformed_lines, invalid = batch.stats.invalid_values,
                            first = ?batch.stats.first_malformed, "kubelet sent series we dropped");
        }
        let containers: Vec<Vec<(&str, crate::point::MetricsPoint)>> = batch
            .pods
            .iter()
            .map(|p| p.containers.iter().map(|c| (&*c.name, c.point)).collect())
            .collect();
        let pods: Vec<PodScrape<'_>> = batch
            .pods
            .iter()
            .zip(&containers)
            .map(|(p, c)| PodScrape {
                namespace: &p.namespace,
                name: &p.name,
                containers: c,
            })
            .collect();
        let scrape = NodeScrape {
            node: batch.node,
            pods: &pods,
        };
        if self.publisher().is_none() {
            let mut store = self.store.write().expect("store lock");
            store.insert_node(node, scrape, now_nanos());
            return Ok(false);
        }
        let op = Op::Insert {
            node: node.to_string(),
            scrape: encode_scrape(scrape),
            now: now_nanos(),
        };
        Ok(self.change(Some(node.clone()), op, addr).is_some())
    }

    /// Makes one change to the store: staged with the publisher (applied once the standbys hold
    /// it, in the order staged), or applied at once without one. When staged, the returned
    /// task ends once the op was applied (or withheld, or dropped); with `node`, the node is in
    /// flight until then (the caller marks it) and the actor is told by `Published`.
    fn change(&self, node: Option<Arc<str>>, op: Op, addr: Addr<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let renews = op.renews();
        let staged = match self.publisher() {
            Some(publisher) => {
                if renews {
                    // Counted before the publisher can conclude it, on whatever thread.
                    self.store.write().expect("store lock").stage_begin();
                }
                publisher.stage(self.id, op)
            }
            None => Err(op),
        };
        match staged {
            Ok(verdict) => Some(tokio::spawn(async move {
                verdict.await;
                if let Some(node) = node {
                    addr.do_send(Published { node });
                }
            })),
            Err(op) => {
                let mut store = self.store.write().expect("store lock");
                if let Err(e) = store.apply(&op) {
                    tracing::error!(shard = self.id, error = %e, "a change did not apply");
                }
                if renews && self.publisher().is_some() {
                    store.stage_end();
                }
                None
            }
        }
    }
}

impl Actor for ShardActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let running = self.ctx.last_tick.load(Ordering::Relaxed) != 0;
        let (empty, stale) = {
            let store = self.store.read().expect("store lock");
            (store.held_counts().0 == 0, store.has_stale())
        };
        let delay = first_delay(running, empty, stale, self.first_tick_delay(self.ctx.shard_count));
        ctx.run_later(delay, |act, ctx| {
            act.tick(ctx);
            ctx.run_interval(act.ctx.resolution, |act, ctx| act.tick(ctx));
        });
    }
}

/// When a new shard actor first scrapes. A shard with stale nodes (taken over with copies that
/// may be older than what was served) is scraped at once, whenever it starts: its nodes are not
/// served until a scrape renews them, so waiting for the spread offset would hide them for up
/// to a resolution (a replica restarted with its data dir had not ticked yet and waited). A
/// shard taken over with nothing to serve while this replica already runs is scraped at once
/// too (its pods are missing until then). Otherwise the first tick keeps the shards' phases
/// spread over the resolution (`spread`), which at first start keeps a replica's scrapes of
/// thousands of kubelets from coming all at once.
pub(crate) fn first_delay(running: bool, empty: bool, stale: bool, spread: Duration) -> Duration {
    if stale || (running && empty) {
        Duration::ZERO
    } else {
        spread
    }
}

impl Handler<SetTargets> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: SetTargets, ctx: &mut Context<Self>) {
        let new: BTreeMap<Arc<str>, ScrapeTarget> = msg.0.into_iter().map(|t| (t.node.clone(), t)).collect();
        let gone: Vec<Arc<str>> = self.targets.keys().filter(|n| !new.contains_key(*n)).cloned().collect();
        if !gone.is_empty() {
            tracing::debug!(shard = self.id, ?gone, "nodes no longer scraped here: forgotten");
            for node in &gone {
                self.ctx.observer.node_removed(node);
            }
            let nodes = gone.iter().map(|n| n.to_string()).collect();
            self.change(None, Op::Forget { nodes }, ctx.address());
        }
        self.targets = new;
    }
}

impl Handler<Stop> for ShardActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        // Messages queued after this one (answers of scrapes still in flight) are not handled:
        // the store no longer changes once the sender's `Stopped` resolves.
        ctx.stop();
    }
}

impl Handler<ScrapeDone> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: ScrapeDone, ctx: &mut Context<Self>) {
        let node = &msg.node;
        if !self.targets.contains_key(node) {
            self.in_flight.remove(node);
            return self.maybe_finish_tick();
        }
        let outcome = match msg.result {
            Ok(scraped) => self.store_scrape(node, &scraped.body, scraped.sent_at, ctx.address()),
            Err(e) => Err(e.to_string()),
        };
        self.ctx
            .observer
            .kubelet_request(node, outcome.is_ok(), msg.took, SystemTime::now());
        match outcome {
            Ok(true) => return,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(node = &**node, %error, "failed to scrape node; serving its last good points")
            }
        }
        self.in_flight.remove(node);
        self.maybe_finish_tick();
    }
}

impl Handler<Merge> for ShardActor {
    type Result = ResponseFuture<()>;

    /// Another holder's copy (a quorum-loss writer's hand-over): nodes it has newer than ours,
    /// and not being scraped right now, are staged like scrapes; resolves once they are
    /// published.
    fn handle(&mut self, msg: Merge, ctx: &mut Context<Self>) -> ResponseFuture<()> {
        let newer: Vec<(String, NodeSnapshot)> = {
            let store = self.store.read().expect("store lock");
            let wanted = |(node, copy): &(String, NodeSnapshot)| {
                self.targets.contains_key(node.as_str())
                    && !self.in_flight.contains(node.as_str())
                    && store.takes(node, copy)
            };
            msg.0.nodes.into_iter().filter(wanted).collect()
        };
        let mut tasks = Vec::new();
        for (node, copy) in newer {
            let node: Arc<str> = node.into();
            let op = Op::Restore {
                node: node.to_string(),
                copy,
            };
            self.in_flight.insert(node.clone());
            match self.change(Some(node.clone()), op, ctx.address()) {
                Some(task) => tasks.push(task),
                None => {
                    self.in_flight.remove(&node);
                }
            }
        }
        Box::pin(async move {
            futures::future::join_all(tasks).await;
        })
    }
}

impl Handler<Published> for ShardActor {
    type Result = ();

    fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
        // A node removed while its scrape was staged is gone all the same: its removal was
        // staged after the scrape, and ops apply in order.
        self.in_flight.remove(&msg.node);
        self.maybe_finish_tick();
    }
}

#[cfg(test)]
mod tests {
    use super::first_delay;
    use std::time::Duration;

    const SPREAD: Duration = Duration::from_millis(1500);

    #[test]
    fn stale_nodes_are_scraped_at_once_even_before_the_first_tick() {
        // A replica restarted with its data dir takes shards over before any of its actors
        // ticked: its stale nodes must not wait for the spread offset (campaign seed 658090).
        assert_eq!(first_delay(false, false, true, SPREAD), Duration::ZERO);
        assert_eq!(first_delay(true, false, true, SPREAD), Duration::ZERO);
    }

    #[test]
    fn empty_shards_wait_for_their_offset_only_at_first_start() {
        assert_eq!(first_delay(true, true, false, SPREAD), Duration::ZERO);
        assert_eq!(first_delay(false, true, false, SPREAD), SPREAD, "first start: spread");
        assert_eq!(
            first_delay(true, false, false, SPREAD),
            SPREAD,
            "a servable copy keeps its phase"
        );
    }
}
