//! The simulated cluster's state: nodes, pods and containers with their usage profiles and
//! incarnations (a restart or reboot starts a new one). Pure: no IO, no clock. The fake
//! apiserver renders objects from it, the fake kubelets render `/metrics/resource` from it, and
//! tests ask it for ground truth. Every change is a [`SimEvent`] with an explicit time, so a
//! kubelet worker process that applies the same events holds the same state.

use super::usage::Profile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Unix time in milliseconds.
pub type Millis = i64;

/// How many ended incarnations a container or node keeps for ground-truth queries.
const MAX_HISTORY: usize = 32;

/// `(namespace, name)`.
pub type PodKey = (String, String);

/// A node as created: identity, capacity and system usage outside pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub ip: Ipv4Addr,
    pub kubelet_port: u16,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub cpu_capacity_millis: u64,
    pub memory_capacity_bytes: u64,
    pub max_pods: u32,
    pub created: Millis,
    pub boot: Millis,
    /// CPU (cores) used on the node outside pods.
    pub system_cpu: Profile,
    /// Memory (bytes) used on the node outside pods.
    pub system_memory: Profile,
    /// The kubelet has swap statistics (Linux, cgroup v2): it reports the swap families, each
    /// container's from [`ContainerSpec::swap`] and the node's as their sum. Without, it leaves
    /// them out (cgroup v1, Windows), as a real kubelet does.
    #[serde(default)]
    pub swap: bool,
}

/// Where a container runs in the pod's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContainerKind {
    Regular,
    /// An init container that has completed: in the spec, never in metrics.
    Init,
    /// A native sidecar (init container with `restartPolicy: Always`): runs beside the others.
    Sidecar,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub kind: ContainerKind,
    pub image: String,
    /// CPU rate in cores.
    pub cpu: Profile,
    /// Working set in bytes.
    pub memory: Profile,
    pub cpu_request_millis: u64,
    pub memory_request_bytes: u64,
    /// Swap in use in bytes, on a node with swap statistics; none is 0 there.
    #[serde(default)]
    pub swap: Option<Profile>,
}

impl ContainerSpec {
    /// Swap bytes `secs` seconds into an incarnation (0 without a swap profile).
    pub fn swap_bytes(&self, secs: f64) -> f64 {
        self.swap.as_ref().map_or(0.0, |p| p.value(secs).round())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl PodPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
        }
    }
}

/// A pod as created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodSpec {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node: String,
    pub labels: BTreeMap<String, String>,
    /// The ReplicaSet owning the pod, if any.
    pub owner: Option<String>,
    pub created: Millis,
    pub phase: PodPhase,
    /// When the containers started (set for Running pods).
    pub started: Option<Millis>,
    pub containers: Vec<ContainerSpec>,
}

/// One life of a container (or of a node's counters) between two restarts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Incarnation {
    pub start: Millis,
    pub end: Option<Millis>,
}

impl Incarnation {
    fn live_at(&self, t: Millis) -> bool {
        self.start <= t && self.end.is_none_or(|end| t < end)
    }
}

/// Seconds from `start` to `t`.
pub fn secs_since(start: Millis, t: Millis) -> f64 {
    (t - start) as f64 / 1000.0
}

/// A container's runtime state.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerState {
    pub spec: Arc<ContainerSpec>,
    pub restarts: u32,
    /// Newest last; the last one is current while the pod runs.
    pub incarnations: Vec<Incarnation>,
}

impl ContainerState {
    /// Whether the container shows up in the kubelet's metrics.
    pub fn reported(&self) -> bool {
        self.spec.kind != ContainerKind::Init
    }

    /// The running incarnation, if any.
    pub fn current(&self) -> Option<&Incarnation> {
        self.incarnations.last().filter(|i| i.end.is_none())
    }

    fn incarnation_at(&self, t: Millis) -> Option<&Incarnation> {
        self.incarnations.iter().rev().find(|i| i.live_at(t))
    }

    /// Cumulative CPU seconds of the incarnation live at `t`.
    pub fn cpu_seconds_at(&self, t: Millis) -> Option<f64> {
        let inc = self.incarnation_at(t)?;
        Some(self.spec.cpu.integral(secs_since(inc.start, t)))
    }

    /// Working set bytes at `t`.
    pub fn memory_at(&self, t: Millis) -> Option<f64> {
        let inc = self.incarnation_at(t)?;
        Some(self.spec.memory.value(secs_since(inc.start, t)).round())
    }

    /// Swap bytes at `t` (see [`ContainerSpec::swap`]).
    pub fn swap_at(&self, t: Millis) -> Option<f64> {
        let inc = self.incarnation_at(t)?;
        Some(self.spec.swap_bytes(secs_since(inc.start, t)))
    }

    /// CPU seconds used by one incarnation up to `t` (or its end).
    fn cpu_seconds_of(&self, inc: &Incarnation, t: Millis) -> f64 {
        let until = inc.end.map_or(t, |end| end.min(t));
        self.spec.cpu.integral(secs_since(inc.start, until))
    }

    pub(crate) fn start(&mut self, at: Millis) {
        self.stop(at);
        self.incarnations.push(Incarnation { start: at, end: None });
        if self.incarnations.len() > MAX_HISTORY {
            self.incarnations.remove(0);
        }
    }

    pub(crate) fn stop(&mut self, at: Millis) {
        if let Some(inc) = self.incarnations.last_mut().filter(|i| i.end.is_none()) {
            inc.end = Some(at);
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodState {
    pub spec: Arc<PodSpec>,
    pub phase: PodPhase,
    pub started: Option<Millis>,
    pub finished: Option<Millis>,
    pub containers: Vec<ContainerState>,
    /// CPU seconds of this pod's ended incarnations (the pod cgroup keeps counting them).
    pub retired_cpu: f64,
}

impl PodState {
    pub(crate) fn new(spec: PodSpec) -> Self {
        let containers = spec
            .containers
            .iter()
            .map(|c| ContainerState {
                spec: Arc::new(c.clone()),
                restarts: 0,
                incarnations: Vec::new(),
            })
            .collect();
        let mut pod = PodState {
            phase: PodPhase::Pending,
            started: None,
            finished: None,
            containers,
            retired_cpu: 0.0,
            spec: Arc::new(spec),
        };
        match (pod.spec.phase, pod.spec.started) {
            (PodPhase::Running, Some(at)) => pod.start(at),
            (PodPhase::Running, None) => pod.start(pod.spec.created),
            (phase, _) => pod.phase = phase,
        }
        pod
    }

    pub fn key(&self) -> PodKey {
        (self.spec.namespace.clone(), self.spec.name.clone())
    }

    /// Containers that appear in `/metrics/resource` while the pod runs.
    pub fn reported_containers(&self) -> impl Iterator<Item = &ContainerState> {
        self.containers.iter().filter(|c| c.reported())
    }

    pub(crate) fn start(&mut self, at: Millis) {
        self.phase = PodPhase::Running;
        self.started = Some(at);
        for c in self.containers.iter_mut().filter(|c| c.reported()) {
            c.start(at);
        }
    }

    /// Ends every running incarnation at `at`; returns their CPU seconds for the node's books.
    pub(crate) fn stop(&mut self, at: Millis) {
        for c in self.containers.iter_mut() {
            if let Some(inc) = c.current().copied() {
                self.retired_cpu += c.cpu_seconds_of(&inc, at);
                c.stop(at);
            }
        }
    }

    /// Cumulative CPU seconds of the pod cgroup at `t` (for `pod_cpu_usage_seconds_total`).
    pub fn cpu_seconds_at(&self, t: Millis) -> f64 {
        self.retired_cpu + self.containers.iter().filter_map(|c| c.cpu_seconds_at(t)).sum::<f64>()
    }

    pub fn memory_at(&self, t: Millis) -> f64 {
        self.containers.iter().filter_map(|c| c.memory_at(t)).sum()
    }
}

/// One container incarnation in a node's books.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub container: Arc<ContainerSpec>,
    pub inc: Incarnation,
}

/// Ended ledger entries older than this are folded into one number.
const LEDGER_FOLD_AFTER_MS: Millis = 3_600_000;

#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    pub spec: Arc<NodeSpec>,
    pub boot: Millis,
    pub ready: bool,
    /// Pods bound to this node, in creation order.
    pub pods: Vec<PodKey>,
    /// Every container incarnation since boot, so node counters are exact at any time since.
    ledger: Vec<LedgerEntry>,
    /// CPU seconds of folded entries, exact for times at or after `folded_until`.
    folded_cpu: f64,
    folded_until: Millis,
}

impl NodeState {
    pub(crate) fn new(spec: NodeSpec) -> Self {
        NodeState {
            boot: spec.boot,
            ready: true,
            pods: Vec::new(),
            ledger: Vec::new(),
            folded_cpu: 0.0,
            folded_until: spec.boot,
            spec: Arc::new(spec),
        }
    }

    /// Cumulative CPU seconds of the node at `t` (since its last boot).
    pub fn cpu_seconds_at(&self, t: Millis) -> f64 {
        let pods: f64 = self
            .ledger
            .iter()
            .filter(|e| e.inc.start <= t)
            .map(|e| {
                let until = e.inc.end.map_or(t, |end| end.min(t));
                e.container.cpu.integral(secs_since(e.inc.start, until))
            })
            .sum();
        self.spec.system_cpu.integral(secs_since(self.boot, t)) + self.folded_cpu + pods
    }

    /// Working set bytes of the node at `t`.
    pub fn memory_at(&self, t: Millis) -> f64 {
        let pods: f64 = self
            .ledger
            .iter()
            .filter(|e| e.inc.live_at(t))
            .map(|e| e.container.memory.value(secs_since(e.inc.start, t)).round())
            .sum();
        self.spec.system_memory.value(secs_since(self.boot, t)).round() + pods
    }

    /// Swap bytes of the node at `t`: its live containers' (the system uses none); `None` on a
    /// node without swap statistics.
    pub fn swap_at(&self, t: Millis) -> Option<f64> {
        let live = self.ledger.iter().filter(|e| e.inc.live_at(t));
        self.spec
            .swap
            .then(|| live.map(|e| e.container.swap_bytes(secs_since(e.inc.start, t))).sum())
    }

    /// Whether `cpu_seconds_at(t)` is exact (not before the boot or folded history).
    pub fn knows(&self, t: Millis) -> bool {
        t >= self.boot && t >= self.folded_until
    }

    pub(crate) fn record_start(&mut self, container: &Arc<ContainerSpec>, at: Millis) {
        let inc = Incarnation { start: at, end: None };
        self.ledger.push(LedgerEntry {
            container: container.clone(),
            inc,
        });
    }

    pub(crate) fn record_stop(&mut self, container: &Arc<ContainerSpec>, at: Millis) {
        let open = self
            .ledger
            .iter_mut()
            .rev()
            .find(|e| e.inc.end.is_none() && Arc::ptr_eq(&e.container, container));
        if let Some(entry) = open {
            entry.inc.end = Some(at);
        }
        self.fold(at);
    }

    /// Folds entries that ended long before `now` into `folded_cpu`.
    fn fold(&mut self, now: Millis) {
        let cutoff = now - LEDGER_FOLD_AFTER_MS;
        let (old, keep): (Vec<_>, Vec<_>) = self
            .ledger
            .drain(..)
            .partition(|e| e.inc.end.is_some_and(|end| end < cutoff));
        self.ledger = keep;
        for e in old {
            let end = e.inc.end.unwrap_or(cutoff);
            self.folded_cpu += e.container.cpu.integral(secs_since(e.inc.start, end));
            self.folded_until = self.folded_until.max(end);
        }
    }

    pub(crate) fn reboot(&mut self, at: Millis) {
        self.boot = at;
        self.ledger.clear();
        self.folded_cpu = 0.0;
        self.folded_until = at;
    }
}
