//! No pod missing from all-namespace lists through the proxy for more than one resolution
//! while at least one replica is alive. Pods of a node whose kubelet fails are excused: the
//! server may drop them after its one-interval grace; so are absences within the budget of a
//! fault that took down every copy of some shards (quorum-loss timeout plus two scrapes).

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::{Observation, Outcome, RunMs, Target};
use std::collections::{BTreeMap, BTreeSet};

type PodKey = (String, String);

pub struct NoLongGaps {
    tally: Tally,
    poll_ms: RunMs,
    /// Pods absent since the answer that started at this time.
    missing_since: BTreeMap<PodKey, RunMs>,
    /// Longest absence per fault kind (the fault last started before the absence).
    longest: BTreeMap<String, RunMs>,
    /// (start, end, pods) of every absence, for the timeline.
    pub absences: Vec<(RunMs, RunMs, PodKey)>,
    seen_once: bool,
}

impl NoLongGaps {
    pub fn new(poll_ms: RunMs) -> Self {
        NoLongGaps {
            tally: Tally::default(),
            poll_ms,
            missing_since: BTreeMap::new(),
            longest: BTreeMap::new(),
            absences: Vec::new(),
            seen_once: false,
        }
    }

    fn close(&mut self, pod: PodKey, since: RunMs, until: RunMs, ctx: &Context) {
        let absent = until - since;
        let kind = ctx
            .timeline
            .fault_before(since + self.poll_ms)
            .map_or("none".to_string(), |f| f.kind.clone());
        let longest = self.longest.entry(kind.clone()).or_default();
        *longest = (*longest).max(absent);
        self.absences.push((since, until, pod.clone()));
        self.tally.checked += 1;
        let node = ctx.pod_nodes.get(&pod).map(String::as_str).unwrap_or("");
        if absent <= ctx.resolution_ms {
            return;
        }
        let budget = ctx
            .timeline
            .overlapping(since, until, 3 * ctx.resolution_ms)
            .filter_map(|f| f.gap_budget_ms)
            .max();
        if budget.is_some_and(|b| absent <= b) || ctx.node_faulty(node, since, until, 3 * ctx.resolution_ms, false) {
            tracing::info!(pod = %format!("{}/{}", pod.0, pod.1), node, absent, since, ?budget, %kind, "absence excused");
            self.tally.excused += 1;
            return;
        }
        let message = format!(
            "pod {}/{} on {node} missing for {absent} ms (after fault {kind})",
            pod.0, pod.1
        );
        self.tally.fail("no-long-gaps", since, message);
    }
}

impl Invariant for NoLongGaps {
    fn name(&self) -> &'static str {
        "no-long-gaps"
    }

    fn rule(&self) -> &'static str {
        "no running pod is missing from all-namespace lists for more than one resolution"
    }

    fn observe(&mut self, observation: &Observation, ctx: &Context) {
        let Observation::Request(req) = observation else { return };
        let Outcome::Ok { pods, complete: true } = &req.outcome else {
            return;
        };
        if req.target != Target::Proxy {
            return;
        }
        let present: BTreeSet<(&str, &str)> = pods.iter().map(|p| (p.namespace.as_str(), p.name.as_str())).collect();
        // Before the first full answer pods are still warming up.
        if !self.seen_once {
            self.seen_once = present.len() == ctx.pod_nodes.len();
            return;
        }
        for pod in ctx.pod_nodes.keys() {
            let here = present.contains(&(pod.0.as_str(), pod.1.as_str()));
            match (here, self.missing_since.get(pod).copied()) {
                (false, None) => {
                    self.missing_since.insert(pod.clone(), req.started);
                }
                (true, Some(since)) => {
                    self.missing_since.remove(pod);
                    self.close(pod.clone(), since, req.started, ctx);
                }
                _ => {}
            }
        }
    }

    fn finish(&mut self, ctx: &Context, end: RunMs) {
        for (pod, since) in std::mem::take(&mut self.missing_since) {
            self.close(pod, since, end, ctx);
        }
    }

    fn verdict(&self) -> Verdict {
        self.tally.verdict(
            self,
            serde_json::json!({"absences": self.absences.len(), "longestGapMsPerFault": self.longest}),
        )
    }
}
