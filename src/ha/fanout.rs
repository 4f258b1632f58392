//! Query fan-out: the shards of a read are grouped by owner, one request per owner replica,
//! this replica's own shards read in process. Each shard is asked of its primary first. If the
//! primary fails or has no current data for it (`cold`), the other sources that answer pings
//! are asked at once and the newest copy wins: around a hand-over the old primary may still
//! hold a scrape newer than the standby's last push, and a reader that took the standby's copy
//! would move a pod's timestamp back. Shards nobody answers for within the deadline are left
//! out (a partial answer, counted and logged), never an error.

use super::Ha;
use super::wire::{QueryRequest, QueryResponse, QueryTarget, WireNode, WirePod, path};
use crate::query::{Reader, shard_answer};
use coordinator::shard_map::{MemberId, ShardMap};
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

/// One source's answer for one shard, while several compete.
struct ShardCopy {
    /// Not `cold`: the source holds current data.
    warm: bool,
    /// The newest timestamp in the answer (`i64::MIN` if it has no rows).
    newest: i64,
    /// The source's place in the shard's list (lower is better).
    rank: usize,
    pods: Vec<WirePod>,
    nodes: Vec<WireNode>,
}

impl ShardCopy {
    fn key(&self) -> (bool, i64, std::cmp::Reverse<usize>) {
        (self.warm, self.newest, std::cmp::Reverse(self.rank))
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
        // How many sources each shard has had so far (the rank of the next one).
        let mut asked_before: HashMap<u32, usize> = HashMap::new();
        let mut out = QueryResponse::default();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            // The primary alone first; then every prompt source at once (at least one source).
            let mut groups: BTreeMap<Source, Vec<u32>> = BTreeMap::new();
            let mut rank: HashMap<(u32, Source), usize> = HashMap::new();
            let mut contested = HashSet::new();
            let mut last_try = HashSet::new();
            for (shard, sources) in &mut pending {
                let take = match round == 0 && !contest_first {
                    true => 1,
                    false => sources.iter().take_while(|c| c.prompt).count().max(1),
                };
                let before = asked_before.entry(*shard).or_default();
                for (i, candidate) in sources.drain(..take).enumerate() {
                    groups.entry(candidate.source).or_default().push(*shard);
                    rank.insert((*shard, candidate.source), *before + i);
                }
                *before += take;
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
            let mut copies: HashMap<u32, ShardCopy> = HashMap::new();
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
                let mut own: HashMap<u32, ShardCopy> = HashMap::new();
                for &shard in asked.iter().filter(|s| usable(s)) {
                    if contested.contains(&shard) {
                        let copy = ShardCopy {
                            warm: !cold.contains(&shard),
                            newest: i64::MIN,
                            rank: rank[&(shard, source)],
                            pods: Vec::new(),
                            nodes: Vec::new(),
                        };
                        own.insert(shard, copy);
                    } else {
                        done.insert(shard);
                    }
                }
                for pod in answer.pods {
                    if let Some(copy) = own.get_mut(&pod.shard) {
                        copy.newest = copy.newest.max(pod.timestamp);
                        copy.pods.push(pod);
                    } else if usable(&pod.shard) && !contested.contains(&pod.shard) {
                        out.pods.push(pod);
                    }
                }
                for node in answer.nodes {
                    if let Some(copy) = own.get_mut(&node.shard) {
                        copy.newest = copy.newest.max(node.timestamp);
                        copy.nodes.push(node);
                    } else if usable(&node.shard) && !contested.contains(&node.shard) {
                        out.nodes.push(node);
                    }
                }
                for (shard, copy) in own {
                    match copies.get(&shard) {
                        Some(best) if best.key() >= copy.key() => {}
                        _ => {
                            copies.insert(shard, copy);
                        }
                    }
                }
            }
            for (shard, mut copy) in copies {
                out.pods.append(&mut copy.pods);
                out.nodes.append(&mut copy.nodes);
                done.insert(shard);
            }
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
