//! Per pod and per client stream (the proxy, each replica), timestamps never go backwards and a
//! repeated timestamp (with the same window, so the same two points) carries the same values. Only answers to requests that started after the
//! previous answer ended are compared (concurrent requests may finish in any order).
//!
//! During a partition (and three resolutions after it heals) both sides answer from their own
//! scrapes, by design (availability over consistency, docs/architecture.md, "What is left, and why it is allowed"), so the proxy,
//! which routes to either side, may mix two streams: such proxy-stream findings are counted as
//! excused. Each replica's own stream stays strict.

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::{Observation, Outcome, RunMs, Target};
use std::collections::HashMap;

struct Last {
    timestamp: i64,
    window: i64,
    cpu: f64,
    memory: f64,
    answered: RunMs,
}

#[derive(Default)]
pub struct MonotonicTimestamps {
    tally: Tally,
    last: HashMap<(Target, String, String), Last>,
    backwards: u64,
    /// Timestamps that went back, per stream (`Proxy`, `R0`, ...).
    backwards_by_target: std::collections::BTreeMap<String, u64>,
    changed_repeats: u64,
    /// Same served second, another window: a second sample within one second (two scrapers
    /// during a handoff; timestamps are served with second precision). Counted, not judged:
    /// the scrape-load invariant judges double scrapes.
    same_second_resamples: u64,
}

fn differs(a: f64, b: f64) -> bool {
    (a - b).abs() > 1e-9 + 1e-6 * a.abs().max(b.abs())
}

impl Invariant for MonotonicTimestamps {
    fn name(&self) -> &'static str {
        "monotonic-timestamps"
    }

    fn rule(&self) -> &'static str {
        "per pod and client stream, timestamps never go backwards nor repeat with different values"
    }

    fn observe(&mut self, observation: &Observation, ctx: &Context) {
        let Observation::Request(req) = observation else { return };
        let Outcome::Ok { pods, .. } = &req.outcome else { return };
        for pod in pods {
            let key = (req.target, pod.namespace.clone(), pod.name.clone());
            let next = Last {
                timestamp: pod.timestamp,
                window: pod.window_ms,
                cpu: pod.cpu_cores,
                memory: pod.memory_bytes,
                answered: req.ended,
            };
            let Some(prev) = self.last.get(&key) else {
                self.last.insert(key, next);
                continue;
            };
            if req.started < prev.answered {
                continue;
            }
            self.tally.checked += 1;
            let split = req.target == Target::Proxy
                && ctx
                    .timeline
                    .overlapping(req.started, req.ended, 3 * ctx.resolution_ms)
                    .any(|f| f.split_views);
            let changed = differs(pod.cpu_cores, prev.cpu) || differs(pod.memory_bytes, prev.memory);
            if pod.timestamp == prev.timestamp && pod.window_ms != prev.window && changed {
                self.same_second_resamples += 1;
                self.last.insert(key, next);
                continue;
            }
            let bad = pod.timestamp < prev.timestamp || (pod.timestamp == prev.timestamp && changed);
            if split && bad {
                self.tally.excused += 1;
                self.last.insert(key, next);
                continue;
            }
            let pod_name = format!("{}/{}", pod.namespace, pod.name);
            if pod.timestamp < prev.timestamp {
                self.backwards += 1;
                *self.backwards_by_target.entry(format!("{:?}", req.target)).or_default() += 1;
                let back = prev.timestamp - pod.timestamp;
                let msg = format!(
                    "{:?}: {pod_name} timestamp went back {back} ms (to {}, window {} ms)",
                    req.target, pod.timestamp, pod.window_ms
                );
                self.tally.fail(self.name(), req.started, msg);
            } else if bad {
                self.changed_repeats += 1;
                let msg = format!(
                    "{:?}: {pod_name} same timestamp and window, values changed (cpu {} -> {}, memory {} -> {})",
                    req.target, prev.cpu, pod.cpu_cores, prev.memory, pod.memory_bytes
                );
                self.tally.fail(self.name(), req.started, msg);
            }
            self.last.insert(key, next);
        }
    }

    fn verdict(&self) -> Verdict {
        self.tally.verdict(
            self,
            serde_json::json!({"backwards": self.backwards, "backwardsByStream": self.backwards_by_target,
                "repeatsWithNewValues": self.changed_repeats,
                "sameSecondResamples": self.same_second_resamples}),
        )
    }
}
