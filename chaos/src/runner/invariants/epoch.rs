//! The shard-map epoch (and the Raft term) a replica reports never goes down during one
//! incarnation of that replica (a restart with an empty data dir is a new member).

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::Observation;
use std::collections::BTreeMap;

#[derive(Default)]
pub struct EpochRises {
    tally: Tally,
    /// (replica, incarnation, member id) -> (epoch, term).
    last: BTreeMap<(usize, u32, u64), (u64, u64)>,
    highest: u64,
}

impl Invariant for EpochRises {
    fn name(&self) -> &'static str {
        "epoch-only-rises"
    }

    fn rule(&self) -> &'static str {
        "a replica's shard-map epoch and Raft term never decrease"
    }

    fn observe(&mut self, observation: &Observation, _ctx: &Context) {
        let Observation::Replica(s) = observation else { return };
        if s.epoch == 0 {
            return;
        }
        self.tally.checked += 1;
        self.highest = self.highest.max(s.epoch);
        let key = (s.replica, s.incarnation, s.member);
        if let Some(&(epoch, term)) = self.last.get(&key) {
            if s.epoch < epoch {
                let msg = format!("r{} epoch went from {epoch} to {}", s.replica, s.epoch);
                self.tally.fail(self.name(), s.at, msg);
            }
            if s.term < term {
                let msg = format!("r{} term went from {term} to {}", s.replica, s.term);
                self.tally.fail(self.name(), s.at, msg);
            }
        }
        self.last.insert(key, (s.epoch, s.term));
    }

    fn verdict(&self) -> Verdict {
        self.tally
            .verdict(self, serde_json::json!({"highestEpoch": self.highest}))
    }
}
