//! The fault schedule: every choice of a run (which faults, in which order, for how long, on
//! which targets) drawn from one seed, so `--reproduce SEED` replays the same plan. Pure: no
//! IO, unit-tested.

use kubesim::sim::rng::Rng;
use serde::Serialize;

/// Faults the runner can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FaultKind {
    /// SIGKILL the Raft leader, restart it after the hold (`fresh`: with an empty data dir).
    KillLeader {
        fresh: bool,
    },
    /// SIGKILL a replica that is not the leader (a primary of some shards, standby of others).
    KillFollower {
        fresh: bool,
    },
    /// SIGKILL every replica but one, restart them after the hold.
    KillAllButOne {
        fresh: bool,
    },
    /// SIGSTOP the leader, SIGCONT after the hold.
    FreezeLeader,
    FreezeFollower,
    /// SIGTERM and restart each replica in turn, waiting for readiness in between.
    RollingRestart,
    /// Start one more replica (a learner), hold, then SIGTERM it.
    ScaleOutIn,
    /// Cut the leader's peer connections to every other replica.
    PartitionLeader,
    /// Cut one follower off from the others.
    PartitionFollower,
    /// Some kubelets answer slowly (still inside the scrape timeout).
    KubeletSlow,
    /// Some kubelets fail: refused connections, 500s, hangs, garbage or truncated bodies.
    KubeletFailing,
    /// Some kubelets lie: zero values, counters going back, stale or old timestamps.
    KubeletLying,
    /// The apiserver ends every watch.
    WatchDrop,
}

impl FaultKind {
    /// Every kind; partition kinds only when partitions are possible.
    pub fn all(partitions: bool) -> Vec<FaultKind> {
        use FaultKind::*;
        let mut kinds = vec![
            KillLeader { fresh: false },
            KillLeader { fresh: true },
            KillFollower { fresh: false },
            KillFollower { fresh: true },
            KillAllButOne { fresh: false },
            KillAllButOne { fresh: true },
            FreezeLeader,
            FreezeFollower,
            RollingRestart,
            ScaleOutIn,
            KubeletSlow,
            KubeletFailing,
            KubeletLying,
            WatchDrop,
        ];
        if partitions {
            kinds.extend([PartitionLeader, PartitionFollower]);
        }
        kinds
    }

    /// A short stable name for reports (`kill-leader-fresh`).
    pub fn name(self) -> String {
        let base = format!("{self:?}");
        let mut out = String::new();
        for (i, c) in base.split_whitespace().next().unwrap_or("").chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        match self {
            FaultKind::KillLeader { fresh: true }
            | FaultKind::KillFollower { fresh: true }
            | FaultKind::KillAllButOne { fresh: true } => out + "-fresh",
            _ => out,
        }
    }
}

/// One planned fault.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    pub kind: FaultKind,
    /// Earliest start, ms after the warm-up.
    pub at_ms: i64,
    /// How long the fault holds before it is healed.
    pub hold_ms: i64,
    /// Draws for choosing targets when the step runs (replica, nodes, variant).
    pub pick: u64,
}

/// The plan for `duration_ms` of faults: every kind once in a shuffled order, then again,
/// each held for 1.5-3 resolutions and followed by `settle` resolutions without faults.
/// `only`, when not empty, keeps the kinds whose name is listed.
pub fn plan(
    seed: u64,
    duration_ms: i64,
    resolution_ms: i64,
    partitions: bool,
    settle: i64,
    only: &[String],
) -> Vec<Step> {
    let mut rng = Rng::derive(seed, 0xC4A05);
    let mut kinds = FaultKind::all(partitions);
    if !only.is_empty() {
        kinds.retain(|k| only.contains(&k.name()));
    }
    if kinds.is_empty() {
        return Vec::new();
    }
    let mut steps = Vec::new();
    let mut at = 0;
    let mut order: Vec<FaultKind> = Vec::new();
    loop {
        if order.is_empty() {
            order = kinds.clone();
            shuffle(&mut order, &mut rng);
        }
        let kind = order.pop().expect("refilled");
        let hold_ms = (rng.range_f64(1.5, 3.0) * resolution_ms as f64) as i64;
        let cost = hold_ms + settle * resolution_ms + extra_ms(kind, resolution_ms);
        if at + cost > duration_ms {
            return steps;
        }
        steps.push(Step {
            kind,
            at_ms: at,
            hold_ms,
            pick: rng.next_u64(),
        });
        at += cost;
    }
}

/// Time a kind needs beyond its hold (restarts and readiness).
fn extra_ms(kind: FaultKind, resolution_ms: i64) -> i64 {
    match kind {
        FaultKind::RollingRestart => 9 * resolution_ms,
        FaultKind::KillAllButOne { .. } | FaultKind::ScaleOutIn => 3 * resolution_ms,
        FaultKind::KillLeader { .. } | FaultKind::KillFollower { .. } => 2 * resolution_ms,
        _ => 0,
    }
}

fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_plan() {
        assert_eq!(
            plan(7, 200_000, 2000, true, 4, &[]),
            plan(7, 200_000, 2000, true, 4, &[])
        );
        assert_ne!(
            plan(7, 200_000, 2000, true, 4, &[]),
            plan(8, 200_000, 2000, true, 4, &[])
        );
    }

    #[test]
    fn fits_the_duration_and_covers_kinds() {
        let steps = plan(3, 600_000, 2000, true, 4, &[]);
        let last = steps.last().unwrap();
        assert!(last.at_ms + last.hold_ms <= 600_000);
        for kind in FaultKind::all(true) {
            assert!(steps.iter().any(|s| s.kind == kind), "{kind:?} missing");
        }
        assert!(steps.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn only_listed_kinds() {
        let steps = plan(3, 100_000, 2000, true, 4, &["freeze-leader".to_string()]);
        assert!(!steps.is_empty() && steps.iter().all(|s| s.kind == FaultKind::FreezeLeader));
    }

    #[test]
    fn names() {
        assert_eq!(FaultKind::KillLeader { fresh: true }.name(), "kill-leader-fresh");
        assert_eq!(FaultKind::KubeletSlow.name(), "kubelet-slow");
    }
}
