//! Ground truth: what a correct metrics server should serve for a node or pod over a window,
//! computed from the same usage profiles the kubelets report.

use super::model::Millis;
use super::world::World;
use serde::{Deserialize, Serialize};

/// Expected usage over `[start, end]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Mean CPU over the window, in cores.
    pub cpu_cores: f64,
    /// Working set at `end`, in bytes.
    pub memory_bytes: f64,
    /// Cumulative CPU seconds at `end`, as the kubelet reports it.
    pub cpu_seconds: f64,
    /// Swap in use at `end`, in bytes; `None` on a node without swap statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_bytes: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerTruth {
    pub name: String,
    /// Start of the incarnation live at `end`.
    pub started: Millis,
    pub restarts: u32,
    pub usage: Usage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodTruth {
    pub namespace: String,
    pub name: String,
    pub node: String,
    pub containers: Vec<ContainerTruth>,
}

impl PodTruth {
    /// Sum over containers.
    pub fn total(&self) -> Usage {
        let mut u = Usage {
            cpu_cores: 0.0,
            memory_bytes: 0.0,
            cpu_seconds: 0.0,
            swap_bytes: None,
        };
        for c in &self.containers {
            u.cpu_cores += c.usage.cpu_cores;
            u.memory_bytes += c.usage.memory_bytes;
            u.cpu_seconds += c.usage.cpu_seconds;
            if let Some(swap) = c.usage.swap_bytes {
                u.swap_bytes = Some(u.swap_bytes.unwrap_or(0.0) + swap);
            }
        }
        u
    }
}

impl World {
    /// The node's usage over `[start, end]`; `None` if the node is unknown or the window starts
    /// before its last boot.
    pub fn node_truth(&self, node: &str, start: Millis, end: Millis) -> Option<Usage> {
        let n = self.nodes.get(node)?;
        if !n.knows(start) {
            return None;
        }
        let (c1, c2) = (n.cpu_seconds_at(start), n.cpu_seconds_at(end));
        let secs = (end - start) as f64 / 1000.0;
        let cpu_cores = if secs > 0.0 { (c2 - c1) / secs } else { 0.0 };
        Some(Usage {
            cpu_cores,
            memory_bytes: n.memory_at(end),
            cpu_seconds: c2,
            swap_bytes: n.swap_at(end),
        })
    }

    /// The pod's per-container usage over `[start, end]`: containers running at `end`, each over
    /// the part of the window since its incarnation started.
    pub fn pod_truth(&self, namespace: &str, name: &str, start: Millis, end: Millis) -> Option<PodTruth> {
        let pod = self.pods.get(&(namespace.to_string(), name.to_string()))?;
        let swap = self.nodes.get(&pod.spec.node).is_some_and(|n| n.spec.swap);
        let containers = pod
            .reported_containers()
            .filter_map(|c| {
                let inc = c
                    .incarnations
                    .iter()
                    .rev()
                    .find(|i| i.start <= end && i.end.is_none_or(|e| end < e))?;
                let from = start.max(inc.start);
                let secs = (end - from) as f64 / 1000.0;
                let (c1, c2) = (c.cpu_seconds_at(from)?, c.cpu_seconds_at(end)?);
                let cpu_cores = if secs > 0.0 { (c2 - c1) / secs } else { 0.0 };
                let usage = Usage {
                    cpu_cores,
                    memory_bytes: c.memory_at(end)?,
                    cpu_seconds: c2,
                    swap_bytes: if swap { c.swap_at(end) } else { None },
                };
                Some(ContainerTruth {
                    name: c.spec.name.clone(),
                    started: inc.start,
                    restarts: c.restarts,
                    usage,
                })
            })
            .collect();
        let (namespace, name) = pod.key();
        Some(PodTruth {
            namespace,
            name,
            node: pod.spec.node.clone(),
            containers,
        })
    }
}
