//! Query fan-out: the shards of a read are grouped by owner, one request per owner replica,
//! this replica's own shards read in process. An owner that fails or has no current data for a
//! shard (`cold`) is replaced by the shard's next owner; shards nobody answers for within the
//! deadline are left out (a partial answer, counted and logged), never an error.

use super::Ha;
use super::wire::{QueryRequest, QueryResponse, QueryTarget, path};
use crate::query::{Reader, shard_answer};
use coordinator::shard_map::{MemberId, ShardMap};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Partial answers are logged as warnings at most this often.
const PARTIAL_WARN_EVERY: Duration = Duration::from_secs(5);
/// When the last partial-answer warning was logged (Unix nanoseconds).
static LAST_PARTIAL_WARN: AtomicI64 = AtomicI64::new(0);

/// Rounds of retrying the next owner (primary, standby, this replica's own data).
const MAX_ROUNDS: usize = 5;

/// Where a shard can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Source {
    Local,
    Remote(MemberId),
}

impl Ha {
    /// Sources for `shard`, best first: reachable owners in map order, the other reachable
    /// members (a shard's previous holder may still have it while both new owners warm up),
    /// this replica's own data if current, and last the owners that stopped answering pings.
    fn sources(&self, map: &ShardMap, shard: u32) -> Vec<Source> {
        let owners = map.owners(shard);
        let (mut up, down): (Vec<MemberId>, Vec<MemberId>) = owners.iter().partition(|o| self.reachable(**o));
        up.extend(
            map.members
                .keys()
                .filter(|m| !owners.contains(m) && self.reachable(**m)),
        );
        let to_source = |o: MemberId| {
            if o == self.me() {
                Source::Local
            } else {
                Source::Remote(o)
            }
        };
        let mut sources: Vec<Source> = up.into_iter().map(to_source).collect();
        let warm = self.shards.stores[shard as usize].read().expect("store lock").is_warm();
        if self.unsettled() {
            // Just back from a freeze: everyone looks unreachable and this replica's points
            // are older than what the others served meanwhile. Its own data comes last.
            sources.retain(|s| *s != Source::Local);
            sources.extend(down.into_iter().map(to_source));
            if warm || owners.contains(&self.me()) {
                sources.push(Source::Local);
            }
            return sources;
        }
        if !sources.contains(&Source::Local) && warm {
            sources.push(Source::Local);
        }
        // Owners that stopped answering pings (frozen, partitioned) only as a last resort: a
        // hung owner must not hold the answer up while another replica has the shard.
        sources.extend(down.into_iter().map(to_source));
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

    /// Reads `shards` from their owners.
    pub async fn gather(&self, reader: &Reader, shards: Vec<u32>, target: QueryTarget) -> QueryResponse {
        let started = Instant::now();
        let deadline = started + self.config.fanout_timeout;
        let map = self.current_map();
        let mut pending: Vec<(u32, Vec<Source>)> = shards
            .into_iter()
            .map(|s| {
                let mut sources = self.sources(&map, s);
                sources.reverse();
                (s, sources)
            })
            .collect();
        let mut missed = pending.iter().filter(|(_, sources)| sources.is_empty()).count();
        pending.retain(|(_, sources)| !sources.is_empty());
        let mut out = QueryResponse::default();
        for round in 0..MAX_ROUNDS {
            let mut groups: BTreeMap<Source, Vec<u32>> = BTreeMap::new();
            let mut last_try = HashSet::new();
            for (shard, sources) in &pending {
                if let Some(source) = sources.last() {
                    groups.entry(*source).or_default().push(*shard);
                    if sources.len() == 1 {
                        last_try.insert(*shard);
                    }
                }
            }
            if groups.is_empty() {
                break;
            }
            let map = &map;
            let calls = groups.iter().map(|(source, shards)| {
                let request = QueryRequest {
                    epoch: map.epoch,
                    shards: shards.clone(),
                    target: target.clone(),
                };
                async move {
                    let answer = match source {
                        Source::Local => self.answer_own(reader, &request),
                        Source::Remote(member) => {
                            let address = self.address_of(map, *member).unwrap_or_default();
                            // A frozen owner must not eat the whole deadline: all but the last
                            // round get half of what is left, so the next owner still has time.
                            let mut left = deadline.saturating_duration_since(Instant::now());
                            if round + 1 < MAX_ROUNDS {
                                left /= 2;
                            }
                            let answer = self
                                .client
                                .call::<_, QueryResponse>(&address, path::QUERY, &request, left);
                            answer.await.map_err(|e| e.to_string())
                        }
                    };
                    (*source, request.shards, answer)
                }
            });
            let answers = futures::future::join_all(calls).await;
            let mut retry: HashSet<u32> = HashSet::new();
            for (source, asked, answer) in answers {
                match answer {
                    Ok(mut answer) => {
                        tracing::debug!(round, ?source, ?asked, cold = ?answer.cold, pods = answer.pods.len(), "fan-out answer");
                        let cold: HashSet<u32> =
                            answer.cold.iter().copied().filter(|s| !last_try.contains(s)).collect();
                        answer.pods.retain(|p| !cold.contains(&p.shard));
                        answer.nodes.retain(|n| !cold.contains(&n.shard));
                        out.pods.append(&mut answer.pods);
                        out.nodes.append(&mut answer.nodes);
                        retry.extend(cold);
                    }
                    Err(error) => {
                        tracing::debug!(?source, %error, shards = asked.len(), "fan-out to an owner failed");
                        retry.extend(asked);
                    }
                }
            }
            pending.retain_mut(|(shard, sources)| {
                sources.pop();
                retry.contains(shard) && !sources.is_empty()
            });
            missed += retry.iter().filter(|s| !pending.iter().any(|(p, _)| p == *s)).count();
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
