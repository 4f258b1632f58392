//! What a client of the APIService saw while replicas were killed, frozen or rolled: the
//! requests through the aggregation proxy that failed during each fault (503 from the proxy, a
//! timeout, any other error), and the window they span, per fault and per fault kind.
//!
//! A failure belongs to the last fault whose span, extended by [`AFTER_MS`] past its end (the
//! no-client-errors invariant's excuse: the readiness probe needs that long to take a replica
//! out), overlaps the request: a request in flight when its replica was killed counts too. The window of a fault runs from
//! the start of its first failed request to the end of its last; 0 when none failed.

use super::super::checker::ProxyFailure;
use super::super::journal::{RunMs, Timeline};
use serde::Serialize;
use std::collections::BTreeMap;

/// How long after a fault ends a failure still belongs to it.
pub const AFTER_MS: RunMs = crate::runner::invariants::errors::EXCUSE_AFTER_MS;
/// The goal for the window a client sees errors in, per fault.
pub const GOAL_MS: RunMs = 1_000;
/// Failed requests quoted per fault (and outside faults).
const EXAMPLES: usize = 3;

/// One fault's failures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultWindow {
    pub kind: String,
    pub target: String,
    pub start: RunMs,
    pub failed: u64,
    /// Of those, answered `503` by the proxy.
    pub unavailable: u64,
    /// Of those, no answer within the client's timeout.
    pub timeouts: u64,
    pub window_ms: RunMs,
    /// The first few failures: `at <ms>: <error>`.
    pub examples: Vec<String>,
}

/// Every fault of one kind together.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindWindow {
    pub faults: u32,
    pub failed: u64,
    pub unavailable: u64,
    pub timeouts: u64,
    /// The longest window of any fault of the kind.
    pub max_window_ms: RunMs,
    pub within_goal: bool,
}

/// Client-visible unavailability of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unavailability {
    pub goal_ms: RunMs,
    pub per_fault: Vec<FaultWindow>,
    pub per_kind: BTreeMap<String, KindWindow>,
    /// Failures that belong to no fault, and the first few of them.
    pub outside_faults: u64,
    pub outside_examples: Vec<String>,
}

pub fn measure(timeline: &Timeline, failures: &[ProxyFailure]) -> Unavailability {
    let mut per_fault: Vec<FaultWindow> = timeline
        .faults
        .iter()
        .map(|f| FaultWindow {
            kind: f.kind.clone(),
            target: f.target.clone(),
            start: f.start,
            failed: 0,
            unavailable: 0,
            timeouts: 0,
            window_ms: 0,
            examples: Vec::new(),
        })
        .collect();
    let mut spans: Vec<Option<(RunMs, RunMs)>> = vec![None; per_fault.len()];
    let mut outside_faults = 0;
    let mut outside_examples = Vec::new();
    let example = |f: &ProxyFailure| format!("at {} ms: {}", f.started, f.error);
    for failure in failures {
        let owner = timeline
            .faults
            .iter()
            .rposition(|f| f.start <= failure.ended && f.end.is_none_or(|end| failure.started <= end + AFTER_MS));
        let Some(i) = owner else {
            outside_faults += 1;
            if outside_examples.len() < EXAMPLES {
                outside_examples.push(example(failure));
            }
            continue;
        };
        let w = &mut per_fault[i];
        w.failed += 1;
        if w.examples.len() < EXAMPLES {
            w.examples.push(example(failure));
        }
        w.unavailable += u64::from(failure.error.starts_with("503"));
        w.timeouts += u64::from(failure.error == "timed out");
        let span = spans[i].get_or_insert((failure.started, failure.ended));
        *span = (span.0.min(failure.started), span.1.max(failure.ended));
    }
    for (w, span) in per_fault.iter_mut().zip(&spans) {
        w.window_ms = span.map_or(0, |(from, to)| to - from);
    }
    let mut per_kind: BTreeMap<String, KindWindow> = BTreeMap::new();
    for w in &per_fault {
        let k = per_kind.entry(w.kind.clone()).or_insert(KindWindow {
            faults: 0,
            failed: 0,
            unavailable: 0,
            timeouts: 0,
            max_window_ms: 0,
            within_goal: true,
        });
        k.faults += 1;
        k.failed += w.failed;
        k.unavailable += w.unavailable;
        k.timeouts += w.timeouts;
        k.max_window_ms = k.max_window_ms.max(w.window_ms);
        k.within_goal = k.max_window_ms <= GOAL_MS;
    }
    Unavailability {
        goal_ms: GOAL_MS,
        per_fault,
        per_kind,
        outside_faults,
        outside_examples,
    }
}

/// The summary's lines.
pub fn summary(u: &Unavailability) -> String {
    let mut out = format!(
        "client-visible errors through the aggregation proxy, per fault kind (goal: window <= {} ms):\n",
        u.goal_ms
    );
    for (kind, k) in &u.per_kind {
        out.push_str(&format!(
            "  {:<5} {:<24} {} fault(s): {} failed ({} x 503, {} timeouts), longest window {} ms\n",
            if k.within_goal { "ok" } else { "OVER" },
            kind,
            k.faults,
            k.failed,
            k.unavailable,
            k.timeouts,
            k.max_window_ms
        ));
    }
    if u.outside_faults > 0 {
        out.push_str(&format!("  {} failed outside any fault\n", u.outside_faults));
        for e in &u.outside_examples {
            out.push_str(&format!("          {e}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::journal::FaultSpan;

    fn fault(kind: &str, start: RunMs, end: RunMs) -> FaultSpan {
        FaultSpan {
            kind: kind.into(),
            target: "r1".into(),
            start,
            end: Some(end),
            disrupted: vec![1],
            nodes: vec![],
            lying: false,
            gap_budget_ms: None,
            split_views: false,
        }
    }

    fn failed(started: RunMs, ended: RunMs, error: &str) -> ProxyFailure {
        ProxyFailure {
            started,
            ended,
            error: error.into(),
        }
    }

    #[test]
    fn failures_are_attributed_to_their_fault_and_span_a_window() {
        let timeline = Timeline {
            faults: vec![
                fault("kill-follower", 1_000, 4_000),
                fault("freeze-leader", 10_000, 14_000),
            ],
            replicas: vec![],
        };
        let failures = [
            failed(900, 1_150, "503 Service Unavailable: in flight when the fault began"),
            failed(1_600, 1_700, "503 Service Unavailable: error trying to reach service"),
            failed(6_500, 6_600, "503 Service Unavailable: late"),
            failed(10_200, 15_200, "timed out"),
            failed(30_000, 30_001, "500 Internal Server Error: x"),
        ];
        let u = measure(&timeline, &failures);
        assert_eq!(u.per_fault[0].failed, 3, "6.5 s is within 3 s after the kill's end");
        assert_eq!(u.per_fault[0].unavailable, 3);
        assert_eq!(u.per_fault[0].window_ms, 6_600 - 900);
        assert_eq!((u.per_fault[1].failed, u.per_fault[1].timeouts), (1, 1));
        assert_eq!(u.per_fault[1].window_ms, 5_000);
        assert_eq!(u.outside_faults, 1);
        assert!(!u.per_kind["kill-follower"].within_goal);
        let none = measure(&timeline, &[]);
        assert!(none.per_kind.values().all(|k| k.within_goal && k.max_window_ms == 0));
        assert!(summary(&u).contains("kill-follower"));
    }
}
