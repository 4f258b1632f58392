//! Builds a cluster's initial events from a few numbers and a seed: nodes on 127.x.y.z,
//! Deployments spread over nodes, 1 to 3 containers per pod, and usage profiles drawn from the
//! seed. The same inputs always give the same cluster.

use super::events::SimEvent;
use super::model::{ContainerKind, ContainerSpec, Millis, NodeSpec, PodPhase, PodSpec};
use super::rng::Rng;
use super::usage::Profile;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Kubelet addresses per first-octet block: 250 x 250.
pub const NODES_PER_BLOCK: u32 = 62_500;
/// Default number of pods per Deployment.
pub const DEFAULT_REPLICAS: u32 = 10;
const WORKLOADS: &[&str] = &[
    "web", "api", "cache", "worker", "frontend", "backend", "ingest", "search", "auth", "queue",
];
const SIDECARS: &[&str] = &["proxy", "log-shipper", "metrics-agent"];
const TIERS: &[&str] = &["frontend", "backend", "batch"];
const MIB: f64 = 1024.0 * 1024.0;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Shape {
    pub nodes: u32,
    pub pods_per_node: u32,
    pub seed: u64,
    /// Second octet of the kubelet addresses: node `i` is `127.<octet>.<i/250>.<i%250+1>`.
    pub ip_octet: u8,
    pub kubelet_port: u16,
    /// The simulation's "now" when the cluster is created.
    pub now: Millis,
    pub replicas_per_deployment: u32,
}

/// The address of node `index` (`index < NODES_PER_BLOCK`).
pub fn node_ip(octet: u8, index: u32) -> Ipv4Addr {
    Ipv4Addr::new(127, octet, ((index / 250) % 250) as u8, (index % 250 + 1) as u8)
}

pub fn node_name(index: u32) -> String {
    format!("node-{index}")
}

/// The namespaces a cluster of `total_pods` spreads its workloads over.
pub fn namespaces(total_pods: u32) -> Vec<String> {
    let count = (total_pods / 50).clamp(2, 100);
    let mut out = vec!["default".to_string()];
    out.extend((1..count).map(|i| format!("team-{i}")));
    out
}

/// All events that create the cluster: nodes first, then pods.
pub fn initial_events(shape: &Shape) -> Vec<SimEvent> {
    let mut events: Vec<SimEvent> = (0..shape.nodes)
        .map(|i| SimEvent::AddNode {
            node: node_spec(shape, i),
        })
        .collect();
    let total = shape.nodes * shape.pods_per_node;
    let namespaces = namespaces(total);
    let replicas = shape.replicas_per_deployment.max(1);
    let mut deployment = None;
    for k in 0..total {
        let d = k / replicas;
        if deployment.as_ref().is_none_or(|(id, _)| *id != d) {
            deployment = Some((d, Deployment::new(shape.seed, d, &namespaces)));
        }
        let (_, dep) = deployment.as_ref().expect("set above");
        let pod = dep.pod(shape, k);
        events.push(SimEvent::AddPod { pod });
    }
    events
}

/// A node spec drawn from the seed.
pub fn node_spec(shape: &Shape, index: u32) -> NodeSpec {
    let mut rng = Rng::derive(shape.seed, 1 << 40 | index as u64);
    let name = node_name(index);
    let boot = shape.now - 5 * 86_400_000 - (rng.unit() * 2.0 * 86_400_000.0) as Millis;
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_string(), name.clone());
    labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("kubernetes.io/arch".to_string(), "amd64".to_string());
    labels.insert("topology.kubernetes.io/zone".to_string(), format!("zone-{}", index % 3));
    labels.insert("node.kubernetes.io/instance-type".to_string(), "sim.large".to_string());
    NodeSpec {
        name,
        ip: node_ip(shape.ip_octet, index),
        kubelet_port: shape.kubelet_port,
        labels,
        annotations: BTreeMap::new(),
        cpu_capacity_millis: 8000,
        memory_capacity_bytes: 32 * 1024 * MIB as u64,
        max_pods: 110,
        created: boot - 10 * 86_400_000,
        boot,
        system_cpu: Profile::Constant {
            value: rng.range_f64(0.05, 0.2),
        },
        system_memory: Profile::Constant {
            value: (rng.range_f64(300.0, 800.0) * MIB).round(),
        },
        swap: false,
    }
}

/// Per-Deployment values shared by its pods.
struct Deployment {
    name: String,
    namespace: String,
    hash: String,
    tier: &'static str,
    workload: &'static str,
    seed: u64,
}

impl Deployment {
    fn new(seed: u64, id: u32, namespaces: &[String]) -> Self {
        let mut rng = Rng::derive(seed, 2 << 40 | id as u64);
        let workload = WORKLOADS[rng.below(WORKLOADS.len() as u64) as usize];
        Deployment {
            name: format!("{workload}-{id}"),
            namespace: namespaces[id as usize % namespaces.len()].clone(),
            hash: rng.suffix(10),
            tier: TIERS[rng.below(TIERS.len() as u64) as usize],
            workload,
            seed,
        }
    }

    fn pod(&self, shape: &Shape, k: u32) -> PodSpec {
        let mut rng = Rng::derive(self.seed, 3 << 40 | k as u64);
        let node = node_name(k % shape.nodes);
        let name = format!("{}-{}-{}", self.name, self.hash, rng.suffix(5));
        let age = rng.range_f64(600.0, 72.0 * 3600.0);
        let created = shape.now - (age * 1000.0) as Millis;
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), self.name.clone());
        labels.insert("pod-template-hash".to_string(), self.hash.clone());
        labels.insert("tier".to_string(), self.tier.to_string());
        PodSpec {
            uid: uid(&mut rng),
            namespace: self.namespace.clone(),
            name,
            node,
            labels,
            owner: Some(format!("{}-{}", self.name, self.hash)),
            created,
            phase: PodPhase::Running,
            started: Some(created + 2000),
            containers: containers(&mut rng, self.workload),
        }
    }
}

/// An RFC 4122-shaped id from the generator.
pub fn uid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        b >> 52,
        b & 0xffff_ffff_ffff
    )
}

fn containers(rng: &mut Rng, workload: &str) -> Vec<ContainerSpec> {
    let count = match rng.below(100) {
        0..55 => 1,
        55..85 => 2,
        _ => 3,
    };
    let mut out = Vec::new();
    if rng.below(5) == 0 {
        out.push(container(rng, "init-config", ContainerKind::Init));
    }
    out.push(container(rng, workload, ContainerKind::Regular));
    for i in 1..count {
        let name = SIDECARS[(i - 1) as usize];
        let kind = if rng.below(4) == 0 {
            ContainerKind::Sidecar
        } else {
            ContainerKind::Regular
        };
        out.push(container(rng, name, kind));
    }
    out
}

/// A container with random CPU and memory profiles.
pub fn container(rng: &mut Rng, name: &str, kind: ContainerKind) -> ContainerSpec {
    let cpu_base = (rng.range_f64(0.001f64.ln(), 0.8f64.ln())).exp();
    let mem_base = (rng.range_f64((8.0 * MIB).ln(), (1024.0 * MIB).ln())).exp().round();
    ContainerSpec {
        name: name.to_string(),
        kind,
        image: format!("registry.example/{name}:1.{}", rng.below(20)),
        cpu: cpu_profile(rng, cpu_base),
        memory: memory_profile(rng, mem_base),
        cpu_request_millis: (cpu_base * 1000.0).ceil() as u64,
        memory_request_bytes: mem_base as u64,
        swap: None,
    }
}

fn cpu_profile(rng: &mut Rng, base: f64) -> Profile {
    match rng.below(100) {
        0..40 => Profile::Constant { value: base },
        40..70 => Profile::Sine {
            base,
            amplitude: base * rng.range_f64(0.1, 0.9),
            period: rng.range_f64(60.0, 1800.0),
            phase: rng.range_f64(0.0, std::f64::consts::TAU),
        },
        70..85 => Profile::Step {
            before: base,
            after: base * rng.range_f64(0.2, 3.0),
            at: rng.range_f64(60.0, 7200.0),
        },
        _ => Profile::Ramp {
            from: base * 0.1,
            to: base,
            duration: rng.range_f64(60.0, 3600.0),
        },
    }
}

fn memory_profile(rng: &mut Rng, base: f64) -> Profile {
    match rng.below(100) {
        0..50 => Profile::Constant { value: base },
        50..75 => Profile::Ramp {
            from: (base * 0.5).round(),
            to: base,
            duration: rng.range_f64(60.0, 3600.0),
        },
        _ => Profile::Sine {
            base,
            amplitude: base * 0.1,
            period: rng.range_f64(60.0, 900.0),
            phase: 0.0,
        },
    }
}
