//! Query fan-out: the shards of a read are grouped by owner, one request per owner replica,
//! this replica's own shards read in process. Each shard is asked of its primary first. If the
//! primary fails or has no current data for it (`cold`), the other sources that answer pings
//! are asked at once and the newest copy of each pod wins: around a hand-over the old primary
//! may still hold a scrape newer than the standby's last push, and a reader that took the
//! standby's copy would move a pod's timestamp back. Shards nobody answers for within the deadline are left
//! out (a partial answer, counted and logged), never an error.

use super::Ha;
use super::wire::{QueryRequest, QueryResponse, QueryTarget, WireNode, WirePod, path};
use crate::query::{Reader, shard_answer};
use coordinator::shard_map::{MemberId, ShardMap};
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Partial answers are logged as warnings at most this often.
const PARTIAL_WARN_EVERY: Duration = Duration::from_secs(5);
/// When the last partial-answer warning was logged (Unix nanoseconds).
static LAST_PARTIAL_WARN: AtomicI64 = AtomicI64::new(0);

/// Rounds of asking further sources (primary; the sources that answer pings; the others).
const MAX_ROUNDS: usize = 5;

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

/// How a row of a shard asked of several sources ranks: from a source with current data
/// first, then the newest, then from the better-placed source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey {
    warm: bool,
    timestamp: i64,
    rank: Reverse<usize>,
}

/// The rows of shards asked of several sources in one round, the best copy of each pod and
/// node kept. Rows are compared one by one, not shard by shard: a source that never scraped
/// one of the shard's nodes must not hide that node's pods.
#[derive(Default)]
struct Contest {
    pods: HashMap<(String, String), (RowKey, WirePod)>,
    nodes: HashMap<String, (RowKey, WireNode)>,
}

impl Contest {
    fn offer_pod(&mut self, key: RowKey, pod: WirePod) {
        offer(&mut self.pods, (pod.namespace.clone(), pod.name.clone()), key, pod);
    }

    fn offer_node(&mut self, key: RowKey, node: WireNode) {
        offer(&mut self.nodes, node.name.clone(), key, node);
    }

    /// Moves the winners into `out`.
    fn finish(self, out: &mut QueryResponse) {
        out.pods.extend(self.pods.into_values().map(|(_, pod)| pod));
        out.nodes.extend(self.nodes.into_values().map(|(_, node)| node));
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

impl Ha {
    /// Sources for `shard`, best first: reachable owners in map order, the other reachable
    /// members (a shard's previous holder may still have it while both new owners warm up),
    /// this replica's own data if current, and last the owners that stopped answering pings.
    fn sources(&self, map: &ShardMap, shard: u32) -> VecDeque<Candidate> {
        let me = self.me();
        let owners = map.owners(shard);
        let candidate = |o: MemberId, prompt: bool| Candidate {
            source: if o == me { Source::Local } else { Source::Remote(o) },
            prompt: prompt || o == me,
        };
        let local = candidate(me, true);
        let warm = self.shards.stores[shard as usize].read().expect("store lock").is_warm();
        if self.unsettled() {
            // Just back from a freeze: the ping table is old, so every other member counts as
            // answering (the owners first), and the map may be too, so the shard's previous
            // holder is asked as well. This replica's points are older than what the others
            // served meanwhile: its own data comes last.
            let others = owners
                .iter()
                .chain(map.members.keys().filter(|m| !owners.contains(m)))
                .filter(|m| **m != me);
            let mut sources: VecDeque<Candidate> = others.map(|o| candidate(*o, true)).collect();
            if warm || owners.contains(&me) {
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
        if warm && !sources.iter().any(|c| c.source == Source::Local) {
            sources.push_back(local);
        }
        // Owners that stopped answering pings (frozen, partitioned) only as a last resort: a
        // hung owner must not hold the answer up while another replica has the shard.
        sources.extend(down.into_iter().map(|o| candidate(o, false)));
        sources
    }

    /// This replica's answer for shards it holds. Just after a freeze every shard is reported
    /// `cold` (the points are kept): the asker takes them only if nobody else answers.
    pub fn answer_own(&self, reader: &Reader, request: &QueryRequest) -> Result<QueryResponse, String> {
        let mut answer = shard_answer(reader, request)?;
        if self.unsettled() {
            answer.cold = request.shards.clone();
        }
        Ok(answer)
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
            Source::Local => self.answer_own(reader, &request),
            Source::Remote(member) => {
                let address = self.address_of(map, member).unwrap_or_default();
                let answer = self
                    .client
                    .call::<_, QueryResponse>(&address, path::QUERY, &request, budget);
                answer.await.map_err(|e| e.to_string())
            }
        }
    }

    /// Reads `shards` from their owners.
    pub async fn gather(&self, reader: &Reader, shards: Vec<u32>, target: QueryTarget) -> QueryResponse {
        let started = Instant::now();
        let deadline = started + self.config.fanout_timeout;
        let map = self.current_map();
        // Just back from a freeze this replica cannot tell which source is current: it asks
        // them all from the start.
        let contest_first = self.unsettled();
        let mut pending: Vec<(u32, VecDeque<Candidate>)> =
            shards.into_iter().map(|s| (s, self.sources(&map, s))).collect();
        let mut missed = pending.iter().filter(|(_, sources)| sources.is_empty()).count();
        pending.retain(|(_, sources)| !sources.is_empty());
        let mut out = QueryResponse::default();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            // The primary alone first; then every prompt source at once (at least one source).
            let mut groups: BTreeMap<Source, Vec<u32>> = BTreeMap::new();
            // Places in the shard's list, for shards asked of several sources this round.
            let mut rank: HashMap<(u32, Source), usize> = HashMap::new();
            let mut contested = HashSet::new();
            let mut last_try = HashSet::new();
            for (shard, sources) in &mut pending {
                let take = match round == 0 && !contest_first {
                    true => 1,
                    false => sources.iter().take_while(|c| c.prompt).count().max(1),
                };
                for (i, candidate) in sources.drain(..take).enumerate() {
                    groups.entry(candidate.source).or_default().push(*shard);
                    if take > 1 {
                        rank.insert((*shard, candidate.source), i);
                    }
                }
                if take > 1 {
                    contested.insert(*shard);
                }
                if sources.is_empty() {
                    last_try.insert(*shard);
                }
            }
            let map = &map;
            let calls = groups.into_iter().map(|(source, shards)| {
                let request = QueryRequest {
                    epoch: map.epoch,
                    shards,
                    target: target.clone(),
                };
                // A frozen owner must not eat the whole deadline: all but the last round get
                // half of what is left, so the next owner still has time.
                let mut budget = deadline.saturating_duration_since(Instant::now());
                if round + 1 < MAX_ROUNDS {
                    budget /= 2;
                }
                async move {
                    let asked = request.shards.clone();
                    (source, asked, self.ask(reader, map, source, request, budget).await)
                }
            });
            let answers = futures::future::join_all(calls).await;
            let mut done: HashSet<u32> = HashSet::new();
            let mut contest = Contest::default();
            for (source, asked, answer) in answers {
                let answer = match answer {
                    Ok(answer) => answer,
                    Err(error) => {
                        tracing::debug!(?source, %error, shards = asked.len(), "fan-out to an owner failed");
                        continue;
                    }
                };
                tracing::debug!(round, ?source, ?asked, cold = ?answer.cold, pods = answer.pods.len(), "fan-out answer");
                let cold: HashSet<u32> = answer.cold.iter().copied().collect();
                // A cold copy is taken only when no source is left for the shard.
                let usable = |s: &u32| !cold.contains(s) || last_try.contains(s);
                done.extend(asked.iter().copied().filter(|s| usable(s)));
                let key = |shard: u32, timestamp: i64| RowKey {
                    warm: !cold.contains(&shard),
                    timestamp,
                    rank: Reverse(rank[&(shard, source)]),
                };
                for pod in answer.pods.into_iter().filter(|p| usable(&p.shard)) {
                    match contested.contains(&pod.shard) {
                        true => contest.offer_pod(key(pod.shard, pod.timestamp), pod),
                        false => out.pods.push(pod),
                    }
                }
                for node in answer.nodes.into_iter().filter(|n| usable(&n.shard)) {
                    match contested.contains(&node.shard) {
                        true => contest.offer_node(key(node.shard, node.timestamp), node),
                        false => out.nodes.push(node),
                    }
                }
            }
            contest.finish(&mut out);
            pending.retain(|(shard, _)| !done.contains(shard));
            missed += pending.iter().filter(|(_, sources)| sources.is_empty()).count();
            pending.retain(|(_, sources)| !sources.is_empty());
            if Instant::now() >= deadline {
                break;
            }
        }
        missed += pending.len();
        tracing::debug!(
            pods = out.pods.len(),
            nodes = out.nodes.len(),
            missed,
            "fan-out gathered"
        );
        if missed > 0 {
            self.partial(missed);
        }
        self.metrics.ha.fanout_duration.observe(started.elapsed().as_secs_f64());
        out
    }

    /// Counts a partial answer; logs a warning at most once per [`PARTIAL_WARN_EVERY`] (every
    /// request during an outage would flood the log), the rest at debug level.
    fn partial(&self, shards: usize) {
        self.metrics.ha.fanout_partial.inc();
        let now = shard::actor::shard::now_nanos();
        let last = LAST_PARTIAL_WARN.load(Ordering::Relaxed);
        // Of concurrent partial answers only the one that moves the time on logs a warning.
        let due = now - last >= PARTIAL_WARN_EVERY.as_nanos() as i64
            && LAST_PARTIAL_WARN
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        match due {
            true => tracing::warn!(
                shards,
                total = self.metrics.ha.fanout_partial.get(),
                "partial answer: no owner answered for some shards; their pods are left out"
            ),
            false => tracing::debug!(shards, "partial answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, timestamp: i64) -> WirePod {
        WirePod {
            shard: 0,
            namespace: "ns".into(),
            name: name.into(),
            timestamp,
            window: 1,
            containers: vec![],
        }
    }

    fn key(warm: bool, timestamp: i64, rank: usize) -> RowKey {
        RowKey {
            warm,
            timestamp,
            rank: Reverse(rank),
        }
    }

    fn served(contest: Contest) -> Vec<(String, i64)> {
        let mut out = QueryResponse::default();
        contest.finish(&mut out);
        let mut rows: Vec<_> = out.pods.into_iter().map(|p| (p.name, p.timestamp)).collect();
        rows.sort();
        rows
    }

    #[test]
    fn the_newest_copy_of_each_pod_wins_and_a_source_lacking_a_pod_hides_nothing() {
        let mut contest = Contest::default();
        // The standby: both pods, from the old primary's previous push.
        contest.offer_pod(key(true, 10, 1), pod("a", 10));
        contest.offer_pod(key(true, 10, 1), pod("b", 10));
        // The old primary: a newer scrape, but it never scraped b's node.
        contest.offer_pod(key(true, 12, 2), pod("a", 12));
        assert_eq!(served(contest), [("a".into(), 12), ("b".into(), 10)]);
    }

    #[test]
    fn current_data_beats_a_newer_cold_copy_and_ties_go_to_the_better_placed_source() {
        let mut contest = Contest::default();
        contest.offer_pod(key(false, 20, 0), pod("a", 20));
        contest.offer_pod(key(true, 10, 3), pod("a", 10));
        let second_placed = WirePod {
            window: 2,
            ..pod("b", 10)
        };
        contest.offer_pod(key(true, 10, 2), second_placed);
        contest.offer_pod(key(true, 10, 1), pod("b", 10));
        let mut out = QueryResponse::default();
        contest.finish(&mut out);
        out.pods.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(out.pods[0].timestamp, 10, "a warm copy beats a cold one");
        assert_eq!(
            out.pods[1].window, 1,
            "on equal timestamps the better-placed source wins"
        );
    }
}
