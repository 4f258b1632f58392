//! What the runner saw, in one place: client observations, replica samples, scrape counts and
//! the fault timeline. Clients and the monitor send [`Observation`]s; the checker feeds them to
//! the invariants as they arrive and keeps the [`Timeline`] the report draws.

use serde::Serialize;
use std::collections::BTreeMap;

/// Milliseconds since the run started.
pub type RunMs = i64;

/// Where a client request went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// Through kubesim's aggregation proxy (what the HPA, VPA and kubectl see).
    Proxy,
    /// Straight at one replica's Metrics API port.
    Replica(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ClientKind {
    Hpa,
    Vpa,
    Top,
    Direct,
}

/// One pod of a PodMetricsList answer.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    pub namespace: String,
    pub name: String,
    /// The served `timestamp` (Unix ms, second precision).
    pub timestamp: i64,
    pub window_ms: i64,
    pub cpu_cores: f64,
    pub memory_bytes: f64,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// 2xx with the pods of the list; `complete` is true for all-namespace lists.
    Ok {
        pods: Vec<PodSample>,
        complete: bool,
    },
    Err(String),
}

/// One client request and its answer.
#[derive(Debug, Clone)]
pub struct Request {
    pub client: ClientKind,
    pub target: Target,
    pub started: RunMs,
    pub ended: RunMs,
    pub outcome: Outcome,
}

/// One replica's self-metrics at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSample {
    pub replica: usize,
    pub incarnation: u32,
    /// The Raft member id the replica reports (a replica that starts over in place gets a new
    /// one without the runner restarting it).
    pub member: u64,
    pub at: RunMs,
    pub leader: bool,
    pub term: u64,
    pub epoch: u64,
    pub primaries: u32,
    pub standbys: u32,
    pub degraded: bool,
}

#[derive(Debug, Clone)]
pub enum Observation {
    Request(Request),
    Replica(ReplicaSample),
    /// Cumulative kubelet scrape counters at kubesim.
    Scrapes {
        at: RunMs,
        per_node: BTreeMap<String, u64>,
    },
}

/// A fault as it ran: `end` is `None` while it is active.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpan {
    pub kind: String,
    /// Short description of the target (replica names, nodes).
    pub target: String,
    pub start: RunMs,
    pub end: Option<RunMs>,
    /// Replicas whose in-flight requests may fail (killed, stopped or restarted).
    #[serde(skip)]
    pub disrupted: Vec<usize>,
    /// Nodes whose kubelet misbehaves.
    #[serde(skip)]
    pub nodes: Vec<String>,
    /// The kubelets lie (values or timestamps), so served values may differ from the truth.
    #[serde(skip)]
    pub lying: bool,
    /// Longest pod absence this fault may cause, if longer than one resolution (faults that
    /// take down every copy of some shards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap_budget_ms: Option<RunMs>,
    /// Both sides of a partition answer from their own scrapes: the proxy may mix them.
    #[serde(skip)]
    pub split_views: bool,
}

/// A replica process's life, for the timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSpan {
    pub replica: usize,
    pub state: String,
    pub start: RunMs,
    pub end: Option<RunMs>,
}

/// Faults and replica states over time, shared by the scheduler and the checker.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeline {
    pub faults: Vec<FaultSpan>,
    pub replicas: Vec<ReplicaSpan>,
}

impl Timeline {
    /// Opens a fault span; returns its index for [`Timeline::end_fault`].
    pub fn start_fault(&mut self, span: FaultSpan) -> usize {
        self.faults.push(span);
        self.faults.len() - 1
    }

    pub fn end_fault(&mut self, index: usize, at: RunMs) {
        self.faults[index].end.get_or_insert(at);
    }

    /// Records that `replica` entered `state` at `at`, closing its previous span.
    pub fn replica_state(&mut self, replica: usize, state: &str, at: RunMs) {
        if let Some(open) = self
            .replicas
            .iter_mut()
            .rev()
            .find(|s| s.replica == replica && s.end.is_none())
        {
            open.end = Some(at);
        }
        self.replicas.push(ReplicaSpan {
            replica,
            state: state.to_string(),
            start: at,
            end: None,
        });
    }

    /// Faults overlapping `[from, to]`, extended by `after` past their end.
    pub fn overlapping(&self, from: RunMs, to: RunMs, after: RunMs) -> impl Iterator<Item = &FaultSpan> {
        self.faults
            .iter()
            .filter(move |f| f.start <= to && f.end.is_none_or(|e| e + after >= from))
    }

    /// The last fault that started at or before `at`.
    pub fn fault_before(&self, at: RunMs) -> Option<&FaultSpan> {
        self.faults.iter().rev().find(|f| f.start <= at)
    }

    /// Whether any fault started or ended within `[from, to]` or is active in it.
    pub fn quiet(&self, from: RunMs, to: RunMs) -> bool {
        self.overlapping(from, to, 0).next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: RunMs, end: Option<RunMs>) -> FaultSpan {
        FaultSpan {
            kind: "k".into(),
            target: "t".into(),
            start,
            end,
            disrupted: vec![],
            nodes: vec![],
            lying: false,
            gap_budget_ms: None,
            split_views: false,
        }
    }

    #[test]
    fn overlap_and_quiet() {
        let mut t = Timeline::default();
        let i = t.start_fault(span(1000, None));
        assert!(!t.quiet(5000, 6000));
        t.end_fault(i, 2000);
        assert!(t.quiet(2500, 6000));
        assert_eq!(t.overlapping(2500, 6000, 1000).count(), 1);
        assert!(t.fault_before(500).is_none());
        assert_eq!(t.fault_before(1500).unwrap().start, 1000);
    }
}
