//! At most one primary per shard per epoch, and at most one leader per Raft term, judged from
//! the replicas' self-metrics sampled together: replicas that report the same epoch hold the
//! same map, so their primary counts may not add up to more than the shard count.

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::{Observation, ReplicaSample, RunMs};
use std::collections::{BTreeMap, BTreeSet};

/// Samples older than this are not compared with newer ones.
const FRESH_MS: RunMs = 1_500;

fn fresh(latest: &BTreeMap<usize, ReplicaSample>, now: RunMs) -> impl Iterator<Item = &ReplicaSample> {
    latest.values().filter(move |s| now - s.at <= FRESH_MS)
}

#[derive(Default)]
pub struct OnePrimary {
    tally: Tally,
    latest: BTreeMap<usize, ReplicaSample>,
    epochs: BTreeSet<u64>,
}

impl Invariant for OnePrimary {
    fn name(&self) -> &'static str {
        "one-primary-per-shard"
    }

    fn rule(&self) -> &'static str {
        "replicas on the same epoch never claim more primaries in total than there are shards"
    }

    fn observe(&mut self, observation: &Observation, ctx: &Context) {
        let Observation::Replica(sample) = observation else {
            return;
        };
        self.latest.insert(sample.replica, *sample);
        if sample.epoch == 0 || sample.degraded {
            return;
        }
        self.epochs.insert(sample.epoch);
        self.tally.checked += 1;
        let total: u32 = fresh(&self.latest, sample.at)
            .filter(|s| s.epoch == sample.epoch && !s.degraded)
            .map(|s| s.primaries)
            .sum();
        if total > ctx.shards {
            let msg = format!(
                "epoch {}: replicas claim {total} primaries for {} shards",
                sample.epoch, ctx.shards
            );
            self.tally.fail(self.name(), sample.at, msg);
        }
    }

    fn verdict(&self) -> Verdict {
        self.tally
            .verdict(self, serde_json::json!({"epochsSeen": self.epochs.len()}))
    }
}

#[derive(Default)]
pub struct OneLeader {
    tally: Tally,
    /// Term -> the replica that said it leads it.
    leaders: BTreeMap<u64, usize>,
}

impl Invariant for OneLeader {
    fn name(&self) -> &'static str {
        "one-leader-per-term"
    }

    fn rule(&self) -> &'static str {
        "no two replicas are leader in the same Raft term"
    }

    fn observe(&mut self, observation: &Observation, _ctx: &Context) {
        let Observation::Replica(sample) = observation else {
            return;
        };
        if !sample.leader {
            return;
        }
        self.tally.checked += 1;
        match self.leaders.get(&sample.term) {
            Some(&other) if other != sample.replica => {
                let msg = format!("term {}: r{other} and r{} both leader", sample.term, sample.replica);
                self.tally.fail(self.name(), sample.at, msg);
            }
            Some(_) => {}
            None => {
                self.leaders.insert(sample.term, sample.replica);
            }
        }
    }

    fn verdict(&self) -> Verdict {
        self.tally
            .verdict(self, serde_json::json!({"terms": self.leaders.len()}))
    }
}
