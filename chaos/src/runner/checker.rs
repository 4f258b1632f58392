//! The checker task: takes observations in arrival order, feeds every invariant with the
//! timeline as it stands, and keeps what the report draws (replica samples, error times,
//! request counts).

use super::invariants::{self, Context, Invariant, Verdict};
use super::journal::{Observation, Outcome, ReplicaSample, RunMs, Target, Timeline};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::UnboundedReceiver;

/// What the checker hands back when the observations end.
pub struct Checked {
    pub verdicts: Vec<Verdict>,
    pub samples: Vec<ReplicaSample>,
    /// Times of failed requests (through the proxy or direct).
    pub errors: Vec<(RunMs, Target)>,
    /// Every failed request through the aggregation proxy: what clients of the APIService saw.
    pub proxy_failures: Vec<ProxyFailure>,
    /// (start, end) of absences of any pod from all-namespace lists.
    pub absences: Vec<(RunMs, RunMs)>,
    pub requests: BTreeMap<String, u64>,
}

/// A request through the proxy that failed: when it ran and how (status text or timeout).
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyFailure {
    pub started: RunMs,
    pub ended: RunMs,
    pub error: String,
}

pub struct CheckerInput {
    pub timeline: Arc<Mutex<Timeline>>,
    pub resolution_ms: RunMs,
    pub poll_ms: RunMs,
    pub epoch_unix_ms: i64,
    pub pod_nodes: BTreeMap<(String, String), String>,
    pub cluster: kubesim::Cluster,
    pub shards: u32,
}

/// Runs until `stop` sends the run's end time, then drains what is queued and judges.
pub fn spawn(
    input: CheckerInput,
    mut rx: UnboundedReceiver<Observation>,
    mut stop: tokio::sync::oneshot::Receiver<RunMs>,
) -> tokio::task::JoinHandle<Checked> {
    tokio::spawn(async move {
        let mut all = invariants::all();
        let mut gaps = invariants::gaps::NoLongGaps::new(input.poll_ms);
        let mut out = Checked {
            verdicts: Vec::new(),
            samples: Vec::new(),
            errors: Vec::new(),
            proxy_failures: Vec::new(),
            absences: Vec::new(),
            requests: BTreeMap::new(),
        };
        let end = loop {
            let obs = tokio::select! {
                end = &mut stop => break end.unwrap_or_default(),
                obs = rx.recv() => obs,
            };
            let Some(obs) = obs else { break 0 };
            let timeline = input.timeline.lock().expect("timeline lock").clone();
            let ctx = context(&input, &timeline);
            for inv in all.iter_mut() {
                inv.observe(&obs, &ctx);
            }
            gaps.observe(&obs, &ctx);
            record(&mut out, &obs);
        };
        let timeline = input.timeline.lock().expect("timeline lock").clone();
        let ctx = context(&input, &timeline);
        for inv in all.iter_mut() {
            inv.finish(&ctx, end);
        }
        gaps.finish(&ctx, end);
        out.absences = gaps.absences.iter().map(|(s, e, _)| (*s, *e)).collect();
        out.verdicts = all.iter().map(|i| i.verdict()).collect();
        out.verdicts.insert(1, gaps.verdict());
        out
    })
}

fn context<'a>(input: &'a CheckerInput, timeline: &'a Timeline) -> Context<'a> {
    Context {
        timeline,
        resolution_ms: input.resolution_ms,
        epoch_unix_ms: input.epoch_unix_ms,
        pod_nodes: &input.pod_nodes,
        truth: Some(&input.cluster),
        shards: input.shards,
    }
}

fn record(out: &mut Checked, obs: &Observation) {
    match obs {
        Observation::Replica(s) => out.samples.push(*s),
        Observation::Request(r) => {
            *out.requests.entry(format!("{:?}", r.client)).or_default() += 1;
            if let Outcome::Err(error) = &r.outcome {
                out.errors.push((r.ended, r.target));
                if r.target == Target::Proxy {
                    out.proxy_failures.push(ProxyFailure {
                        started: r.started,
                        ended: r.ended,
                        error: error.clone(),
                    });
                }
            }
        }
        Observation::Scrapes { .. } => {}
    }
}
