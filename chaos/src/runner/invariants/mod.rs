//! The invariants a run must keep, one family per module. Each sees every [`Observation`] as it
//! arrives (so a violation is logged when it happens, not at the end) with the fault
//! [`Timeline`] so far, and gives a [`Verdict`] at the end.

pub mod epoch;
pub mod errors;
pub mod gaps;
pub mod ownership;
pub mod scrapes;
pub mod timestamps;
pub mod truth;

use super::journal::{Observation, RunMs, Timeline};
use serde::Serialize;
use std::collections::BTreeMap;

/// Examples kept per invariant.
const EXAMPLES: usize = 12;

/// What every invariant may consult.
pub struct Context<'a> {
    pub timeline: &'a Timeline,
    pub resolution_ms: RunMs,
    /// Unix ms at run time 0.
    pub epoch_unix_ms: i64,
    /// Node of every pod running at the start (namespace, name) -> node.
    pub pod_nodes: &'a BTreeMap<(String, String), String>,
    /// Ground truth, when the cluster runs in this process.
    pub truth: Option<&'a kubesim::Cluster>,
    /// `--shards` of the replicas.
    pub shards: u32,
}

impl Context<'_> {
    /// Whether `node` misbehaved (any kubelet fault) around `[from, to]`, or lied when `lying`.
    pub fn node_faulty(&self, node: &str, from: RunMs, to: RunMs, after: RunMs, lying: bool) -> bool {
        self.timeline
            .overlapping(from, to, after)
            .any(|f| (!lying || f.lying) && f.nodes.iter().any(|n| n == node))
    }
}

pub trait Invariant: Send {
    fn name(&self) -> &'static str;
    /// One sentence: what must hold.
    fn rule(&self) -> &'static str;
    fn observe(&mut self, observation: &Observation, ctx: &Context);
    /// Called once after the last observation.
    fn finish(&mut self, _ctx: &Context, _end: RunMs) {}
    fn verdict(&self) -> Verdict;
}

/// Every invariant but [`gaps::NoLongGaps`] (the checker keeps that one apart for its
/// absences), fresh.
pub fn all() -> Vec<Box<dyn Invariant>> {
    vec![
        Box::new(errors::NoClientErrors::default()),
        Box::new(timestamps::MonotonicTimestamps::default()),
        Box::new(ownership::OnePrimary::default()),
        Box::new(ownership::OneLeader::default()),
        Box::new(epoch::EpochRises::default()),
        Box::new(truth::CloseToTruth::default()),
        Box::new(scrapes::OneScrapePerInterval::default()),
    ]
}

/// The result of one invariant.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub name: String,
    pub rule: String,
    pub checked: u64,
    pub excused: u64,
    pub violations: u64,
    pub examples: Vec<String>,
    /// Invariant-specific figures for the report.
    pub stats: serde_json::Value,
    /// When each violation happened (the report attributes them to faults).
    #[serde(skip)]
    pub times: Vec<RunMs>,
    /// Violations per fault kind (the fault last started before each), filled by the report.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub by_fault: BTreeMap<String, u64>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// Counts of checks, excuses and violations with the first examples.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub checked: u64,
    pub excused: u64,
    pub violations: u64,
    pub examples: Vec<String>,
    pub times: Vec<RunMs>,
}

impl Tally {
    pub fn fail(&mut self, name: &str, at: RunMs, message: String) {
        self.violations += 1;
        self.times.push(at);
        tracing::warn!(invariant = name, at_ms = at, "{message}");
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("t={:.1}s {message}", at as f64 / 1000.0));
        }
    }

    pub fn verdict(&self, inv: &dyn Invariant, stats: serde_json::Value) -> Verdict {
        Verdict {
            name: inv.name().to_string(),
            rule: inv.rule().to_string(),
            checked: self.checked,
            excused: self.excused,
            violations: self.violations,
            examples: self.examples.clone(),
            stats,
            times: self.times.clone(),
            by_fault: BTreeMap::new(),
        }
    }
}
