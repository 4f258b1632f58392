//! Renders a node's `/metrics/resource` payload in the kubelet's exact text format.
//!
//! A [`Template`] is built once per change of the node's pods: every series' name and label
//! text is laid out in advance, so a scrape only copies those bytes and formats the numbers.

use super::faults::Family;
use super::gofloat::write_go_float;
use crate::sim::model::{ContainerSpec, Millis, NodeState, secs_since};
use crate::sim::world::World;
use std::io::Write as _;
use std::sync::Arc;

/// One container series: its label text and what its values follow.
#[derive(Debug)]
struct ContainerRow {
    labels: Box<[u8]>,
    spec: Arc<ContainerSpec>,
    start: Millis,
}

/// One pod series: its label text and the rows of its containers.
#[derive(Debug)]
struct PodRow {
    labels: Box<[u8]>,
    containers: Vec<usize>,
    retired_cpu: f64,
}

/// Everything needed to render one node's payload, without the world lock.
#[derive(Debug)]
pub struct Template {
    containers: Vec<ContainerRow>,
    pods: Vec<PodRow>,
    node: NodeState,
}

/// How a scrape's values are bent by a fault.
#[derive(Debug, Clone, Default)]
pub struct Mods {
    pub zero_values: bool,
    /// Multiplies CPU counters (1.0 when absent).
    pub cpu_factor: Option<f64>,
    pub missing: Vec<Family>,
}

const HELP: &[(Family, &str, &str)] = &[
    (
        Family::ContainerCpuUsageSecondsTotal,
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    ),
    (
        Family::ContainerMemoryWorkingSetBytes,
        "[STABLE] Current working set of the container in bytes",
        "gauge",
    ),
    (
        Family::ContainerStartTimeSeconds,
        "[STABLE] Start time of the container since unix epoch in seconds",
        "gauge",
    ),
    (
        Family::ContainerSwapUsageBytes,
        "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems",
        "gauge",
    ),
    (
        Family::NodeCpuUsageSecondsTotal,
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    ),
    (
        Family::NodeMemoryWorkingSetBytes,
        "[STABLE] Current working set of the node in bytes",
        "gauge",
    ),
    (
        Family::NodeSwapUsageBytes,
        "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems",
        "gauge",
    ),
    (
        Family::PodCpuUsageSecondsTotal,
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
        "counter",
    ),
    (
        Family::PodMemoryWorkingSetBytes,
        "[STABLE] Current working set of the pod in bytes",
        "gauge",
    ),
    (
        Family::PodSwapUsageBytes,
        "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
        "gauge",
    ),
    (
        Family::ResourceScrapeError,
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    ),
];

impl Family {
    /// A swap family: written only by a kubelet with swap statistics.
    pub fn is_swap(self) -> bool {
        matches!(
            self,
            Family::ContainerSwapUsageBytes | Family::NodeSwapUsageBytes | Family::PodSwapUsageBytes
        )
    }

    /// The metric name as the kubelet writes it.
    pub fn name(self) -> &'static str {
        match self {
            Family::ContainerCpuUsageSecondsTotal => "container_cpu_usage_seconds_total",
            Family::ContainerMemoryWorkingSetBytes => "container_memory_working_set_bytes",
            Family::ContainerStartTimeSeconds => "container_start_time_seconds",
            Family::ContainerSwapUsageBytes => "container_swap_usage_bytes",
            Family::NodeCpuUsageSecondsTotal => "node_cpu_usage_seconds_total",
            Family::NodeMemoryWorkingSetBytes => "node_memory_working_set_bytes",
            Family::NodeSwapUsageBytes => "node_swap_usage_bytes",
            Family::PodCpuUsageSecondsTotal => "pod_cpu_usage_seconds_total",
            Family::PodMemoryWorkingSetBytes => "pod_memory_working_set_bytes",
            Family::PodSwapUsageBytes => "pod_swap_usage_bytes",
            Family::ResourceScrapeError => "resource_scrape_error",
        }
    }
}

/// Appends `s` with the exposition format's label-value escaping.
fn escape_label(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn labels(pairs: &[(&str, &str)]) -> Box<[u8]> {
    let mut out = vec![b'{'];
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        escape_label(&mut out, v);
        out.push(b'"');
    }
    out.push(b'}');
    out.into_boxed_slice()
}

impl Template {
    /// Lays out `node`'s running pods and containers, sorted as the Go client sorts series.
    pub fn build(world: &World, node: &NodeState) -> Template {
        let mut pods: Vec<_> = world.running_pods(node).collect();
        pods.sort_by_key(|a| a.key());
        let mut containers = Vec::new();
        let mut pod_rows = Vec::new();
        for pod in pods {
            let (ns, name) = (&pod.spec.namespace, &pod.spec.name);
            let mut indices = Vec::new();
            for c in pod.reported_containers() {
                let Some(inc) = c.current() else { continue };
                indices.push(containers.len());
                containers.push(ContainerRow {
                    labels: labels(&[("container", &c.spec.name), ("namespace", ns), ("pod", name)]),
                    spec: c.spec.clone(),
                    start: inc.start,
                });
            }
            let labels = labels(&[("namespace", ns), ("pod", name)]);
            pod_rows.push(PodRow {
                labels,
                containers: indices,
                retired_cpu: pod.retired_cpu,
            });
        }
        let mut order: Vec<usize> = (0..containers.len()).collect();
        order.sort_by(|&a, &b| containers[a].labels.cmp(&containers[b].labels));
        let remap: Vec<usize> = {
            let mut r = vec![0; order.len()];
            order.iter().enumerate().for_each(|(new, &old)| r[old] = new);
            r
        };
        pod_rows
            .iter_mut()
            .for_each(|p| p.containers.iter_mut().for_each(|i| *i = remap[*i]));
        let mut slots: Vec<Option<ContainerRow>> = containers.into_iter().map(Some).collect();
        let containers = order
            .iter()
            .map(|&i| slots[i].take().expect("each index once"))
            .collect();
        Template {
            containers,
            pods: pod_rows,
            node: node.clone(),
        }
    }

    pub fn container_count(&self) -> usize {
        self.containers.len()
    }

    /// Appends the payload as of `ts` to `out`.
    pub fn render(&self, ts: Millis, mods: &Mods, out: &mut Vec<u8>) {
        let cpu = |c: &ContainerRow, t: Millis| c.spec.cpu.integral(secs_since(c.start, t));
        let mem = |c: &ContainerRow, t: Millis| c.spec.memory.value(secs_since(c.start, t)).round();
        let swap = |c: &ContainerRow, t: Millis| c.spec.swap_bytes(secs_since(c.start, t));
        let factor = mods.cpu_factor.unwrap_or(1.0);
        for &(family, help, kind) in HELP {
            if mods.missing.contains(&family) || (family.is_swap() && !self.node.spec.swap) {
                continue;
            }
            let empty = match family {
                Family::ContainerCpuUsageSecondsTotal
                | Family::ContainerMemoryWorkingSetBytes
                | Family::ContainerStartTimeSeconds
                | Family::ContainerSwapUsageBytes => self.containers.is_empty(),
                Family::PodCpuUsageSecondsTotal | Family::PodMemoryWorkingSetBytes | Family::PodSwapUsageBytes => {
                    self.pods.is_empty()
                }
                _ => false,
            };
            if empty {
                continue;
            }
            let name = family.name().as_bytes();
            header(out, name, help, kind);
            match family {
                Family::ContainerCpuUsageSecondsTotal => {
                    self.each_container(out, name, ts, mods, |c, t| cpu(c, t) * factor)
                }
                Family::ContainerMemoryWorkingSetBytes => self.each_container(out, name, ts, mods, mem),
                Family::ContainerStartTimeSeconds => {
                    for c in &self.containers {
                        sample(out, name, &c.labels, c.start as f64 / 1000.0, None);
                    }
                }
                Family::ContainerSwapUsageBytes => self.each_container(out, name, ts, &Mods::default(), swap),
                Family::NodeCpuUsageSecondsTotal => sample(
                    out,
                    name,
                    b"",
                    value(mods, self.node.cpu_seconds_at(ts) * factor),
                    Some(ts),
                ),
                Family::NodeMemoryWorkingSetBytes => {
                    sample(out, name, b"", value(mods, self.node.memory_at(ts)), Some(ts))
                }
                Family::NodeSwapUsageBytes => {
                    let t = |c: &ContainerRow| ts.max(c.start);
                    let total = self.containers.iter().map(|c| swap(c, t(c))).sum();
                    sample(out, name, b"", total, Some(ts))
                }
                Family::PodCpuUsageSecondsTotal => self.each_pod(out, name, ts, mods, |p| {
                    (p.retired_cpu
                        + p.containers
                            .iter()
                            .map(|&i| cpu(&self.containers[i], ts.max(self.containers[i].start)))
                            .sum::<f64>())
                        * factor
                }),
                Family::PodMemoryWorkingSetBytes => self.each_pod(out, name, ts, mods, |p| {
                    p.containers
                        .iter()
                        .map(|&i| mem(&self.containers[i], ts.max(self.containers[i].start)))
                        .sum()
                }),
                Family::PodSwapUsageBytes => self.each_pod(out, name, ts, &Mods::default(), |p| {
                    p.containers
                        .iter()
                        .map(|&i| swap(&self.containers[i], ts.max(self.containers[i].start)))
                        .sum()
                }),
                Family::ResourceScrapeError => sample(out, name, b"", 0.0, None),
            }
        }
    }

    fn each_container(
        &self,
        out: &mut Vec<u8>,
        name: &[u8],
        ts: Millis,
        mods: &Mods,
        f: impl Fn(&ContainerRow, Millis) -> f64,
    ) {
        for c in &self.containers {
            // A container's first stats sample is never older than the container (a stats
            // refresh before a restart does not describe the new instance).
            let t = ts.max(c.start);
            sample(out, name, &c.labels, value(mods, f(c, t)), Some(t));
        }
    }

    fn each_pod(&self, out: &mut Vec<u8>, name: &[u8], ts: Millis, mods: &Mods, f: impl Fn(&PodRow) -> f64) {
        for p in &self.pods {
            sample(out, name, &p.labels, value(mods, f(p)), Some(ts));
        }
    }
}

fn value(mods: &Mods, v: f64) -> f64 {
    if mods.zero_values { 0.0 } else { v }
}

fn header(out: &mut Vec<u8>, name: &[u8], help: &str, kind: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(help.as_bytes());
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

fn sample(out: &mut Vec<u8>, name: &[u8], labels: &[u8], v: f64, ts: Option<Millis>) {
    out.extend_from_slice(name);
    out.extend_from_slice(labels);
    out.push(b' ');
    write_go_float(out, v);
    if let Some(ts) = ts {
        out.push(b' ');
        let _ = write!(out, "{ts}");
    }
    out.push(b'\n');
}
