//! Query fan-out: the shards of a read are grouped by source, one request per source replica,
//! this replica's own copies read in process. Each shard is asked of its primary first (the
//! writer). When that answer is not authoritative (see `copies.rs`) or does not come, every
//! other source that answers pings is asked at once, then the others; per pod the newest
//! authoritative copy wins. A stale copy is never served: it may be older than what the set
//! served before (the serving rule, docs/architecture.md). Shards nobody answers for
//! authoritatively within the deadline are left out (a partial answer, counted and logged),
//! never an error.
//!
//! A round is planned ([`Plan::round`]), asked, and its answers taken ([`Taken::take`]);
//! `gather` runs rounds until every shard has an authoritative answer, no source is left, or
//! the deadline passes.

use super::Ha;
use super::replicate::PUSH_TIMEOUT;
use crate::peer::wire::{QueryRequest, QueryResponse, QueryTarget, WireNode, WirePod, path};
use crate::query::{Reader, shard_answer};
use coordinator::shard_map::{MemberId, ShardMap};
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Partial answers are logged as warnings at most this often.
const PARTIAL_WARN_EVERY: Duration = Duration::from_secs(5);
/// When the last partial-answer warning was logged (Unix nanoseconds).
static LAST_PARTIAL_WARN: AtomicI64 = AtomicI64::new(0);

/// Rounds of asking (primary; the sources that answer pings; the others, one at a time).
const MAX_ROUNDS: usize = 6;

/// How long an authoritative answer waits for a shard's staged copies to be published (their
/// pushes end within [`PUSH_TIMEOUT`]).
pub const PUBLISH_WAIT: Duration = Duration::from_millis(PUSH_TIMEOUT.as_millis() as u64 + 250);

/// Where a shard can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Source {
    Local,
    Remote(MemberId),
}

/// A source of one shard, and whether it answers promptly (answered a ping recently, or is
/// this replica): prompt sources are asked together, the others one at a time.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    source: Source,
    prompt: bool,
}

/// The shards still to be answered authoritatively, each with the sources not asked yet.
struct Plan {
    pending: BTreeMap<u32, VecDeque<Candidate>>,
    /// Each source's place in each shard's list (better placed wins a tie).
    rank: HashMap<(u32, Source), usize>,
}

impl Plan {
    fn new(sources: impl Iterator<Item = (u32, VecDeque<Candidate>)>) -> Plan {
        let mut rank = HashMap::new();
        let pending = sources
            .inspect(|(shard, candidates)| {
                for (i, c) in candidates.iter().enumerate() {
                    rank.insert((*shard, c.source), i);
                }
            })
            .collect();
        Plan { pending, rank }
    }

    /// What to ask this round, by source: the primary alone first (unless `contest_first`),
    /// then every prompt source at once (at least one source per shard).
    fn round(&mut self, round: usize, contest_first: bool) -> BTreeMap<Source, Vec<u32>> {
        let mut asks: BTreeMap<Source, Vec<u32>> = BTreeMap::new();
        for (shard, sources) in &mut self.pending {
            let take = if round == 0 && !contest_first {
                1
            } else {
                sources.iter().take_while(|c| c.prompt).count().max(1)
            };
            for candidate in sources.drain(..take.min(sources.len())) {
                asks.entry(candidate.source).or_default().push(*shard);
            }
        }
        asks
    }

    fn rank(&self, shard: u32, source: Source) -> usize {
        self.rank.get(&(shard, source)).copied().unwrap_or(usize::MAX)
    }

    /// Asks `source` again for `shard` first thing next round (it deferred the shard).
    fn ask_again(&mut self, shard: u32, source: Source) {
        if let Some(sources) = self.pending.get_mut(&shard) {
            sources.push_front(Candidate { source, prompt: true });
        }
    }
}

/// How a row ranks against other copies of the same pod or node: the newest, then from the
/// better-placed source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    timestamp: i64,
    rank: Reverse<usize>,
}

/// The best copy of each pod and node of one shard, from its authoritative answers.
#[derive(Default)]
struct ShardRows {
    pods: HashMap<(String, String), (RowKey, WirePod)>,
    nodes: HashMap<String, (RowKey, WireNode)>,
}

impl ShardRows {
    /// Takes one authoritative source's rows of this shard. Rows are compared one by one, not
    /// copy by copy: a source that never held one of the shard's nodes must not hide that
    /// node's pods.
    fn offer(&mut self, rank: usize, pods: Vec<WirePod>, nodes: Vec<WireNode>) {
        let key = |timestamp| RowKey {
            timestamp,
            rank: Reverse(rank),
        };
        for pod in pods {
            let id = (pod.namespace.clone(), pod.name.clone());
            offer(&mut self.pods, id, key(pod.timestamp), pod);
        }
        for node in nodes {
            offer(&mut self.nodes, node.name.clone(), key(node.timestamp), node);
        }
    }
}

fn offer<K: std::hash::Hash + Eq, R>(best: &mut HashMap<K, (RowKey, R)>, id: K, key: RowKey, row: R) {
    match best.entry(id) {
        Entry::Occupied(mut held) if held.get().0 < key => {
            held.insert((key, row));
        }
        Entry::Occupied(_) => {}
        Entry::Vacant(slot) => {
            slot.insert((key, row));
        }
    }
}

/// Everything the rounds brought, per shard.
#[derive(Default)]
struct Taken {
    shards: BTreeMap<u32, ShardRows>,
}

impl Taken {
    /// Takes one round's answers; shards answered authoritatively leave the plan, shards a
    /// source deferred are asked of it again.
    fn take(&mut self, plan: &mut Plan, answers: Vec<(Source, Vec<u32>, Result<QueryResponse, String>)>) {
        let mut done = BTreeSet::new();
        for (source, asked, answer) in answers {
            let answer = match answer {
                Ok(answer) => answer,
                Err(error) => {
                    tracing::debug!(?source, %error, shards = asked.len(), "fan-out to a source failed");
                    continue;
                }
            };
            tracing::trace!(?source, ?asked, cold = ?answer.cold, pods = answer.pods.len(), "fan-out answer");
            let asked: HashSet<u32> = asked.into_iter().collect();
            let cold: HashSet<u32> = answer.cold.iter().copied().collect();
            let deferred: HashSet<u32> = answer.deferred.iter().copied().collect();
            let mut pods: HashMap<u32, Vec<WirePod>> = HashMap::new();
            let mut nodes: HashMap<u32, Vec<WireNode>> = HashMap::new();
            // Rows of shards this source was not asked for are ignored: never trust peer data
            // to be what was asked.
            for pod in answer.pods.into_iter().filter(|p| asked.contains(&p.shard)) {
                pods.entry(pod.shard).or_default().push(pod);
            }
            for node in answer.nodes.into_iter().filter(|n| asked.contains(&n.shard)) {
                nodes.entry(node.shard).or_default().push(node);
            }
            for &shard in &asked {
                if deferred.contains(&shard) {
                    plan.ask_again(shard, source);
                    continue;
                }
                if cold.contains(&shard) {
                    continue;
                }
                let rows = self.shards.entry(shard).or_default();
                let (p, n) = (
                    pods.remove(&shard).unwrap_or_default(),
                    nodes.remove(&shard).unwrap_or_default(),
                );
                rows.offer(plan.rank(shard, source), p, n);
                done.insert(shard);
            }
        }
        plan.pending.retain(|shard, _| !done.contains(shard));
    }

    /// The winners, and how many shards of `asked` nobody answered for authoritatively.
    fn finish(self, asked: usize) -> (QueryResponse, usize) {
        let mut out = QueryResponse::default();
        let answered = self.shards.len();
        for rows in self.shards.into_values() {
            out.pods.extend(rows.pods.into_values().map(|(_, pod)| pod));
            out.nodes.extend(rows.nodes.into_values().map(|(_, node)| node));
        }
        (out, asked.saturating_sub(answered))
    }
}

impl Ha {
    /// Sources for `shard`, best first: the reachable owners in map order, the other reachable
    /// members (a shard's previous holder keeps its copy a while), this replica's own copy if
    /// it holds one, and last the owners that stopped answering pings.
    fn sources(&self, map: &ShardMap, shard: u32) -> VecDeque<Candidate> {
        let me = self.me();
        let owners = map.owners(shard);
        let candidate = |o: MemberId, prompt: bool| Candidate {
            source: if o == me { Source::Local } else { Source::Remote(o) },
            prompt: prompt || o == me,
        };
        let local = candidate(me, true);
        let holds = self.shards.stores[shard as usize]
            .read()
            .expect("store lock")
            .holds_nodes();
        if self.unsettled() {
            // Just back from a freeze: the ping table is old, so every other member counts as
            // answering (the owners first), and the map may be too, so the shard's previous
            // holder is asked as well. This replica's points are older than what the others
            // served meanwhile: its own copy comes last.
            let others = owners
                .iter()
                .chain(map.members.keys().filter(|m| !owners.contains(m)))
                .filter(|m| **m != me);
            let mut sources: VecDeque<Candidate> = others.map(|o| candidate(*o, true)).collect();
            if holds || owners.contains(&me) {
                sources.push_back(local);
            }
            return sources;
        }
        let (mut up, down): (Vec<MemberId>, Vec<MemberId>) = owners.iter().partition(|o| self.reachable(**o));
        up.extend(
            map.members
                .keys()
                .filter(|m| !owners.contains(m) && self.reachable(**m)),
        );
        let mut sources: VecDeque<Candidate> = up.into_iter().map(|o| candidate(o, true)).collect();
        if holds && !sources.iter().any(|c| c.source == Source::Local) {
            sources.push_back(local);
        }
        // Owners that stopped answering pings (frozen, partitioned) only as a last resort: a
        // hung owner must not hold the answer up while another replica has the shard.
        sources.extend(down.into_iter().map(|o| candidate(o, false)));
        sources
    }

    /// This replica's answer for the shards asked: each shard's rows, its stale copies listed
    /// as `cold`. An authoritative copy first waits until the shard's staged copies are
    /// published, so it never misses points a standby may already serve.
    pub async fn answer_own(&self, reader: &Reader, request: &QueryRequest) -> Result<QueryResponse, String> {
        let stale = self.stale_shards(request).await;
        shard_answer(reader, request, &stale)
    }

    /// The shards of `request` whose copy here is stale: not authoritative, or a standby's
    /// whose staged push was not committed in time (see `lease.rs`). A writer's copy is never
    /// waited for: standbys serve only what it published.
    pub async fn stale_shards(&self, request: &QueryRequest) -> HashSet<u32> {
        let map = self.current_map();
        let settled = !self.unsettled();
        // The asker's map is newer: this replica may no longer own what it holds.
        let behind = request.epoch > map.epoch;
        let shards = request.shards.iter().copied().filter(|&s| s < self.shards.shards);
        let checks = shards.map(|shard| {
            let map = &map;
            async move { (shard, !behind && self.copy_serves(map, shard, settled, false).await) }
        });
        let mut stale = HashSet::new();
        for (shard, serves) in futures::future::join_all(checks).await {
            if !serves {
                stale.insert(shard);
            }
        }
        stale
    }

    /// Asks `source` for `shards`; a remote call gets `budget`.
    async fn ask(
        &self,
        reader: &Reader,
        map: &ShardMap,
        source: Source,
        request: QueryRequest,
        budget: Duration,
    ) -> Result<QueryResponse, String> {
        match source {
            Source::Local => self.answer_own(reader, &request).await,
            Source::Remote(member) => {
                let address = self.address_of(map, member).unwrap_or_default();
                let answer = self
                    .client
                    .call::<_, QueryResponse>(&address, path::QUERY, &request, budget);
                answer.await.map_err(|e| {
                    if let crate::peer::transport::PeerError::Connect(_) = e {
                        self.liveness.record_refused(member);
                    }
                    e.to_string()
                })
            }
        }
    }

    /// Reads `shards` from their sources. A fan-out that this process's own stall (SIGSTOP, a
    /// paused VM) overtook is asked again with a fresh deadline: its calls timed out because
    /// this replica did not run, not because the sources did not answer, and its partial answer
    /// would leave out every pod (soak seed 537829: a list in flight when the replica froze
    /// came back empty after SIGCONT).
    pub async fn gather(&self, reader: &Reader, shards: Vec<u32>, target: QueryTarget) -> QueryResponse {
        let started = Instant::now();
        let (out, missed) = self.gather_once(reader, shards.clone(), target.clone()).await;
        let (out, missed) = if missed > 0 && self.stall.stalled_since(started) {
            tracing::info!(missed, "a fan-out spanned a stall of this replica: asked again");
            self.gather_once(reader, shards, target).await
        } else {
            (out, missed)
        };
        if missed > 0 {
            self.partial(missed);
        }
        self.metrics.ha.fanout_duration.observe(started.elapsed().as_secs_f64());
        out
    }

    /// One fan-out within `--fanout-timeout`: the gathered rows and how many shards nobody
    /// answered for authoritatively.
    async fn gather_once(&self, reader: &Reader, shards: Vec<u32>, target: QueryTarget) -> (QueryResponse, usize) {
        let started = Instant::now();
        let deadline = started + self.config.fanout_timeout;
        let map = self.current_map();
        let asked = shards.len();
        // Just back from a freeze this replica cannot tell which source is current: it asks
        // them all from the start.
        let contest_first = self.unsettled();
        let mut plan = Plan::new(shards.into_iter().map(|s| (s, self.sources(&map, s))));
        let mut taken = Taken::default();
        for round in 0..MAX_ROUNDS {
            let asks = plan.round(round, contest_first);
            if asks.is_empty() {
                break;
            }
            // A frozen source must not eat the whole deadline: all but the last round get half
            // of what is left, so the next source still has time.
            let mut budget = deadline.saturating_duration_since(Instant::now());
            if round + 1 < MAX_ROUNDS {
                budget /= 2;
            }
            let calls = asks.into_iter().map(|(source, shards)| {
                let request = QueryRequest {
                    epoch: map.epoch,
                    shards: shards.clone(),
                    target: target.clone(),
                };
                let map = &map;
                async move { (source, shards, self.ask(reader, map, source, request, budget).await) }
            });
            let answers = futures::future::join_all(calls).await;
            taken.take(&mut plan, answers);
            plan.pending.retain(|_, sources| !sources.is_empty());
            if plan.pending.is_empty() || Instant::now() >= deadline {
                break;
            }
        }
        let (out, missed) = taken.finish(asked);
        tracing::debug!(
            pods = out.pods.len(),
            nodes = out.nodes.len(),
            missed,
            "fan-out gathered"
        );
        (out, missed)
    }

    /// Counts a partial answer; logs a warning at most once per [`PARTIAL_WARN_EVERY`] (every
    /// request during an outage would flood the log), the rest at debug level.
    fn partial(&self, shards: usize) {
        self.metrics.ha.fanout_partial.inc();
        let now = shard::point::now_nanos();
        let last = LAST_PARTIAL_WARN.load(Ordering::Relaxed);
        // Of concurrent partial answers only the one that moves the time on logs a warning.
        let due = now - last >= PARTIAL_WARN_EVERY.as_nanos() as i64
            && LAST_PARTIAL_WARN
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if due {
            tracing::warn!(
                shards,
                total = self.metrics.ha.fanout_partial.get(),
                "partial answer: no owner answered for some shards; their pods are left out"
            );
        } else {
            tracing::debug!(shards, "partial answer");
        }
    }
}

impl crate::query::Fanout for Ha {
    fn gather<'a>(
        &'a self,
        local: &'a Reader,
        shards: Vec<u32>,
        target: QueryTarget,
    ) -> std::pin::Pin<Box<dyn Future<Output = QueryResponse> + 'a>> {
        Box::pin(Ha::gather(self, local, shards, target))
    }

    fn can_answer(&self) -> bool {
        Ha::can_answer(self)
    }

    fn split_local<'a>(
        &'a self,
        shards: Vec<u32>,
    ) -> std::pin::Pin<Box<dyn Future<Output = (Vec<u32>, Vec<u32>)> + 'a>> {
        Box::pin(Ha::split_local(self, shards))
    }
}

#[cfg(test)]
mod tests;
