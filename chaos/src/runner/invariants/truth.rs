//! Served values are within tolerance of kubesim's ground truth for the served timestamp and
//! window, except for pods on kubelets that lie (zero values, counters going back, stale or
//! old timestamps).

use super::{Context, Invariant, Tally, Verdict};
use crate::runner::journal::{Observation, Outcome, PodSample};

/// Relative tolerance, plus an absolute one for values near zero.
pub const TOLERANCE: f64 = 0.02;
const CPU_ABS: f64 = 0.001;
const MEMORY_ABS: f64 = 8192.0;
/// Pods compared per answer.
const PER_ANSWER: usize = 10;

#[derive(Default)]
pub struct CloseToTruth {
    tally: Tally,
    answers: u64,
    worst_cpu: f64,
}

/// Whether `served` is within tolerance of what the truth takes for an end time anywhere in
/// the served second (timestamps have second precision).
fn close(served: f64, abs: f64, candidates: &[f64]) -> bool {
    let (lo, hi) = candidates
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    !candidates.is_empty() && served >= lo * (1.0 - TOLERANCE) - abs && served <= hi * (1.0 + TOLERANCE) + abs
}

impl CloseToTruth {
    fn check(&mut self, pod: &PodSample, cluster: &kubesim::Cluster) -> Option<String> {
        let truths: Vec<(f64, f64)> = (0..=10)
            .filter_map(|i| {
                let end = pod.timestamp + i * 100;
                let t = cluster.pod_truth(&pod.namespace, &pod.name, end - pod.window_ms, end)?;
                let total = t.total();
                Some((total.cpu_cores, total.memory_bytes))
            })
            .collect();
        if truths.is_empty() {
            return None;
        }
        let cpus: Vec<f64> = truths.iter().map(|t| t.0).collect();
        let memories: Vec<f64> = truths.iter().map(|t| t.1).collect();
        self.tally.checked += 1;
        let (cpu_ok, mem_ok) = (
            close(pod.cpu_cores, CPU_ABS, &cpus),
            close(pod.memory_bytes, MEMORY_ABS, &memories),
        );
        if cpus[0] > 0.0 {
            self.worst_cpu = self.worst_cpu.max((pod.cpu_cores / cpus[0] - 1.0).abs());
        }
        (!(cpu_ok && mem_ok)).then(|| {
            format!(
                "{}/{}: served cpu {:.4} memory {:.0}, truth cpu {:.4} memory {:.0} (window {} ms)",
                pod.namespace, pod.name, pod.cpu_cores, pod.memory_bytes, cpus[0], memories[0], pod.window_ms
            )
        })
    }
}

impl Invariant for CloseToTruth {
    fn name(&self) -> &'static str {
        "close-to-truth"
    }

    fn rule(&self) -> &'static str {
        "served CPU and memory are within 2% of the ground truth for the served timestamp and window"
    }

    fn observe(&mut self, observation: &Observation, ctx: &Context) {
        let Observation::Request(req) = observation else { return };
        let (Outcome::Ok { pods, .. }, Some(cluster)) = (&req.outcome, ctx.truth) else {
            return;
        };
        if pods.is_empty() {
            return;
        }
        self.answers += 1;
        let step = (pods.len() / PER_ANSWER).max(1);
        let offset = (self.answers as usize) % step;
        for pod in pods.iter().skip(offset).step_by(step).take(PER_ANSWER) {
            let key = (pod.namespace.clone(), pod.name.clone());
            let node = ctx.pod_nodes.get(&key).map(String::as_str).unwrap_or("");
            let from = pod.timestamp - ctx.epoch_unix_ms - pod.window_ms - 2 * ctx.resolution_ms;
            if ctx.node_faulty(node, from, req.ended, 2 * ctx.resolution_ms, true) {
                self.tally.excused += 1;
                continue;
            }
            if let Some(msg) = self.check(pod, cluster) {
                self.tally.fail(self.name(), req.started, msg);
            }
        }
    }

    fn verdict(&self) -> Verdict {
        self.tally
            .verdict(self, serde_json::json!({"worstCpuDeviation": self.worst_cpu}))
    }
}
