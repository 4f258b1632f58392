//! [`ShardSet`]: a replica's shards — one store per shard, and an actor for each shard this
//! replica scrapes (all of them with one replica; its primary shards, plus orphaned ones in
//! quorum-loss mode, with peers). The API reads the stores directly; node changes become
//! `SetTargets` for the running actors and are remembered for actors started later.

use super::messages::{Merge, SetTargets, Stop};
use super::publish::{self, Verdict};
use super::shard::{ShardActor, ShardContext};
use crate::hash::shard_of;
use crate::point::now_nanos;
use crate::scrape::{AddressPolicy, NodeInfo, ScrapeTarget};
use crate::store::{Op, ShardSnapshot, Store};
use actix::prelude::*;
use apimachinery::selector::LabelSelector;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// Longest a stopped shard waits for its staged copies (bounded by the publisher's own push
/// deadline, well below this).
pub const STOP_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Resolves once a stopped shard actor has handled everything sent before its stop: the
/// shard's store then holds its last scrape and changes no more.
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct ShardSet {
    pub shards: u32,
    pub stores: Vec<Arc<RwLock<Store>>>,
    /// Per shard, woken whenever a staged copy is published or dropped.
    published: Vec<Arc<Notify>>,
    /// Since when (Unix ns) some actor runs; 0 while none does.
    scraping_since: std::sync::atomic::AtomicI64,
    ctx: Arc<ShardContext>,
    /// The running actor of each shard this replica scrapes.
    actors: Mutex<Vec<Option<Addr<ShardActor>>>>,
    /// Per shard, whether its running actor is a warm-up ([`ShardSet::start_warm`]).
    warm: Vec<AtomicBool>,
    /// Each shard's current targets, to send only changes and to brief actors started later.
    sent: Mutex<Vec<Vec<ScrapeTarget>>>,
}

impl ShardSet {
    /// Stores for every shard and actors for every shard (one replica scrapes everything).
    /// Must run on an actix arbiter.
    pub fn start(shards: u32, ctx: Arc<ShardContext>) -> ShardSet {
        let set = Self::idle(shards, ctx);
        set.set_scraping(|_| true);
        set
    }

    /// Stores for every shard and no actors: a replica with peers waits for the shard map.
    pub fn idle(shards: u32, ctx: Arc<ShardContext>) -> ShardSet {
        let resolution = ctx.resolution.as_nanos() as i64;
        let stores = (0..shards)
            .map(|_| Arc::new(RwLock::new(Store::new(resolution))))
            .collect();
        ShardSet {
            shards,
            stores,
            published: (0..shards).map(|_| Arc::new(Notify::new())).collect(),
            scraping_since: Default::default(),
            ctx,
            actors: Mutex::new(vec![None; shards as usize]),
            warm: (0..shards).map(|_| AtomicBool::new(false)).collect(),
            sent: Mutex::new(vec![Vec::new(); shards as usize]),
        }
    }

    /// Starts the actors of shards for which `scrape(shard)` holds and stops the others. A
    /// started actor gets the shard's current targets; a stopped one leaves its store alone.
    /// Returns, per stopped shard, when its store stopped changing (a scrape answered before the
    /// stop is still stored, and every copy it staged is published or dropped). Must run on an
    /// actix arbiter.
    pub fn set_scraping(&self, scrape: impl Fn(u32) -> bool) -> Vec<(u32, Stopped)> {
        let mut stopped = Vec::new();
        for shard in 0..self.shards {
            if scrape(shard) {
                self.start_one(shard)
            } else {
                stopped.extend(self.stop_one(shard).map(|s| (shard, s)))
            }
        }
        stopped
    }

    /// Starts `shard`'s actor unless one runs (see [`ShardSet::set_scraping`]). A warm-up
    /// running must be stopped first: it stays what it is.
    pub fn start_one(&self, shard: u32) {
        self.start_actor(shard, false);
    }

    /// Starts a warm-up actor for `shard` unless one runs (see [`ShardActor::warm_up`]): its
    /// scrapes go into the store at once, replicated to nobody, and the store must not be
    /// served. Stop it ([`ShardSet::stop_one`]) before starting the shard's writer.
    pub fn start_warm(&self, shard: u32) {
        self.start_actor(shard, true);
    }

    fn start_actor(&self, shard: u32, warm: bool) {
        let mut actors = self.actors.lock().expect("actors lock");
        let Some(actor @ None) = actors.get_mut(shard as usize) else {
            return;
        };
        let s = shard as usize;
        let new = ShardActor::new(shard, self.ctx.clone(), self.stores[s].clone());
        let addr = if warm { new.warm_up() } else { new }.start();
        addr.do_send(SetTargets(self.sent.lock().expect("sent lock")[s].clone()));
        *actor = Some(addr);
        self.warm[s].store(warm, Relaxed);
        if !warm {
            let _ = self.scraping_since.compare_exchange(0, now_nanos(), Relaxed, Relaxed);
        }
    }

    /// Whether `shard`'s running actor is a warm-up.
    pub fn is_warm(&self, shard: u32) -> bool {
        self.warm.get(shard as usize).is_some_and(|w| w.load(Relaxed))
    }

    /// Stops `shard`'s actor if it runs; the future resolves once its store stopped changing.
    pub fn stop_one(&self, shard: u32) -> Option<Stopped> {
        let addr = {
            let mut actors = self.actors.lock().expect("actors lock");
            let addr = actors.get_mut(shard as usize)?.take()?;
            self.warm[shard as usize].store(false, Relaxed);
            let writers = (0..self.shards).filter(|&s| actors[s as usize].is_some() && !self.is_warm(s));
            if writers.count() == 0 {
                self.scraping_since.store(0, Relaxed);
            }
            addr
        };
        // Queued now; the answer comes once the messages before it are handled.
        let request = addr.send(Stop);
        let s = shard as usize;
        let (store, published) = (self.stores[s].clone(), self.published[s].clone());
        Some(Box::pin(async move {
            _ = request.await;
            publish::wait_published(&store, &published, STOP_DRAIN_TIMEOUT).await;
        }))
    }

    /// Hands another holder's copy to `shard`'s actor, which takes the nodes it has newer (see
    /// [`Merge`]); false if the shard is not scraped here.
    pub async fn merge(&self, shard: u32, copy: ShardSnapshot) -> bool {
        let addr = self
            .actors
            .lock()
            .expect("actors lock")
            .get(shard as usize)
            .cloned()
            .flatten();
        match addr {
            Some(addr) => addr.send(Merge(copy)).await.is_ok(),
            None => false,
        }
    }

    /// Ends staged ops of `shard` as replication decided, in the order they were staged (see
    /// [`Verdict`]), and wakes the readers waiting for them. An op that does not apply (an
    /// undecodable scrape, which a writer never stages) is logged and skipped.
    pub fn conclude(&self, shard: u32, ops: &[Op], verdict: Verdict) {
        let s = shard as usize;
        {
            let mut store = self.stores[s].write().expect("store lock");
            for op in ops {
                match verdict {
                    Verdict::Publish => {
                        if let Err(e) = store.apply(op) {
                            tracing::error!(shard, error = %e, "a staged op did not apply");
                        }
                    }
                    Verdict::Withhold => store.withhold(op),
                    Verdict::Drop => {}
                }
                if op.renews() {
                    store.stage_end();
                }
            }
        }
        self.published[s].notify_waiters();
    }

    /// Wakes the readers waiting for `shard`'s staged changes (a standby applied or dropped some).
    pub fn notify_published(&self, shard: u32) {
        self.published[shard as usize].notify_waiters();
    }

    /// Waits until `shard` has no staged copy left (at most `timeout`); returns whether it has
    /// none. A read waits so, to serve every copy a standby may already hold.
    pub async fn wait_published(&self, shard: u32, timeout: Duration) -> bool {
        let s = shard as usize;
        publish::wait_published(&self.stores[s], &self.published[s], timeout).await
    }

    /// Drops points older than `max_age` in the stores of shards this replica does not scrape
    /// (a scraping shard's actor expires its own store every tick).
    pub fn expire_idle(&self, now: crate::point::Nanos, max_age: crate::point::Nanos) {
        for (shard, store) in self.stores.iter().enumerate() {
            if !self.has_actor(shard as u32) {
                store.write().expect("store lock").expire(now, max_age);
            }
        }
    }

    /// Since when (Unix ns) this replica scrapes some shard without a break; `None` while it
    /// scrapes none.
    pub fn scraping_since(&self) -> Option<crate::point::Nanos> {
        Some(self.scraping_since.load(Relaxed)).filter(|&t| t != 0)
    }

    /// Whether this replica scrapes `shard` as its writer (a warm-up does not count).
    pub fn is_scraping(&self, shard: u32) -> bool {
        self.has_actor(shard) && !self.is_warm(shard)
    }

    /// Whether an actor (writer or warm-up) scrapes `shard`.
    fn has_actor(&self, shard: u32) -> bool {
        self.actors
            .lock()
            .expect("actors lock")
            .get(shard as usize)
            .is_some_and(Option::is_some)
    }

    /// Forgets a shard's points (it left this replica); its nodes' per-node series go too.
    pub fn clear(&self, shard: u32) {
        let gone = self.stores[shard as usize].write().expect("store lock").clear();
        tracing::debug!(shard, nodes = gone.len(), "cleared a released copy");
        for node in gone {
            self.ctx.observer.node_removed(&node);
        }
    }

    /// The shard of `node`.
    pub fn shard_of(&self, node: &str) -> u32 {
        shard_of(node, self.shards)
    }

    /// The store holding `node`'s points.
    pub fn store_of(&self, node: &str) -> &Arc<RwLock<Store>> {
        &self.stores[self.shard_of(node) as usize]
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
                Ok(target) => per_shard[self.shard_of(&node.name) as usize].push(target),
                Err(e) => tracing::warn!(error = %e, "node not scraped"),
            }
        }
        let actors = self.actors.lock().expect("actors lock");
        let mut sent = self.sent.lock().expect("sent lock");
        for (i, targets) in per_shard.into_iter().enumerate() {
            if sent[i] != targets {
                if let Some(actor) = &actors[i] {
                    actor.do_send(SetTargets(targets.clone()));
                }
                sent[i] = targets;
            }
        }
    }

    /// Nodes with a target, for tests and status.
    pub fn target_count(&self) -> usize {
        self.sent.lock().expect("sent lock").iter().map(Vec::len).sum()
    }

    /// Nodes with a target in each shard.
    pub fn targets_per_shard(&self) -> Vec<usize> {
        self.sent.lock().expect("sent lock").iter().map(Vec::len).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actor::{NoObserver, ScrapeDone};
    use crate::parse::Limits;
    use crate::scrape::{KubeletClient, Scraped, tls};
    use std::time::Duration;

    /// A resolution long enough that no tick scrapes during a test.
    const IDLE_RESOLUTION: Duration = Duration::from_secs(3600);
    const NODE: &str = "node-1";

    fn set() -> ShardSet {
        set_with(None)
    }

    /// A publisher that counts what it is given and never lets a change land.
    #[derive(Default)]
    struct Counting(std::sync::atomic::AtomicUsize);

    impl crate::actor::Publisher for Counting {
        fn stage(&self, _: u32, _: Op) -> Result<futures::future::BoxFuture<'static, crate::actor::Verdict>, Op> {
            self.0.fetch_add(1, Relaxed);
            Ok(Box::pin(futures::future::pending()))
        }
    }

    fn set_with(publisher: Option<Arc<dyn crate::actor::Publisher>>) -> ShardSet {
        let client = tls::client_config(tls::Trust::Insecure, None).expect("client config");
        let ctx = ShardContext {
            resolution: IDLE_RESOLUTION,
            limits: Limits::default(),
            client: KubeletClient::new(client, None, Duration::from_secs(1), 1 << 20),
            limiter: Arc::new(tokio::sync::Semaphore::new(1)),
            observer: Arc::new(NoObserver),
            last_tick: Default::default(),
            publisher,
            shard_count: 1,
        };
        ShardSet::idle(1, Arc::new(ctx))
    }

    /// A kubelet answer whose node point is stamped `millis` (Unix ms).
    fn answer(millis: i64) -> ScrapeDone {
        let body =
            format!("node_cpu_usage_seconds_total 10.5 {millis}\nnode_memory_working_set_bytes 1048576 {millis}\n");
        ScrapeDone {
            node: NODE.into(),
            result: Ok(Scraped {
                body: body.into(),
                sent_at: millis * 1_000_000,
            }),
            took: Duration::from_millis(1),
        }
    }

    fn last_stored(set: &ShardSet) -> Option<i64> {
        let store = set.stores[0].read().unwrap();
        store
            .snapshot_node(NODE)
            .and_then(|n| n.last)
            .map(|p| p.timestamp / 1_000_000)
    }

    #[actix::test]
    async fn stopped_resolves_once_the_answers_before_the_stop_are_stored_and_later_ones_are_dropped() {
        let set = set();
        assert!(set.set_scraping(|_| true).is_empty(), "nothing was running");
        let actor = set.actors.lock().unwrap()[0].clone().expect("the shard's actor");
        let target = ScrapeTarget {
            node: NODE.into(),
            url: "https://127.0.0.1:1/metrics/resource".into(),
        };
        actor.do_send(SetTargets(vec![target]));
        // An answer already queued when the shard moves away: it belongs in the hand-over copy.
        actor.do_send(answer(1_700_000_000_000));
        let stopped = set.set_scraping(|_| false);
        assert_eq!(stopped.len(), 1);
        // An answer arriving after the stop (a scrape that was in flight) is not stored: the
        // copy handed over stays the newest this replica has.
        actor.do_send(answer(1_700_000_001_000));
        for (shard, stopped) in stopped {
            assert_eq!(shard, 0);
            stopped.await;
        }
        assert_eq!(last_stored(&set), Some(1_700_000_000_000));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(last_stored(&set), Some(1_700_000_000_000));
        assert!(!set.is_scraping(0));
    }

    #[actix::test]
    async fn a_warm_up_stores_at_once_replicates_nothing_and_is_not_the_shards_writer() {
        let publisher = Arc::new(Counting::default());
        let set = set_with(Some(publisher.clone()));
        let target = ScrapeTarget {
            node: NODE.into(),
            url: "https://127.0.0.1:1/metrics/resource".into(),
        };
        set.start_warm(0);
        assert!(set.is_warm(0) && !set.is_scraping(0), "a warm-up is not the writer");
        assert_eq!(set.scraping_since(), None, "nor does it count for collection-timely");
        let actor = set.actors.lock().unwrap()[0].clone().expect("the warm-up");
        actor.do_send(SetTargets(vec![target.clone()]));
        actor.do_send(answer(1_700_000_000_000));
        set.stop_one(0).expect("it ran").await;
        assert_eq!(
            last_stored(&set),
            Some(1_700_000_000_000),
            "stored without the publisher"
        );
        assert_eq!(publisher.0.load(Relaxed), 0, "nothing replicated");
        assert!(!set.is_warm(0));

        // The shard's writer, started next, stages its scrapes with the publisher.
        set.start_one(0);
        assert!(set.is_scraping(0) && !set.is_warm(0));
        let actor = set.actors.lock().unwrap()[0].clone().expect("the writer");
        actor.do_send(SetTargets(vec![target]));
        actor.do_send(answer(1_700_000_002_000));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(publisher.0.load(Relaxed), 1, "the writer's scrape is staged");
        assert_eq!(
            last_stored(&set),
            Some(1_700_000_000_000),
            "and not served before it is held"
        );
    }
}
