//! High-level actions on a running cluster, shared by the admin API and scenario files. Each
//! becomes [`SimEvent`]s at the current time, or a fault switch, or a replica change.

use crate::kubelet::Fault;
use crate::sim::generate::{self, Shape};
use crate::sim::model::ContainerKind;
use crate::sim::rng::Rng;
use crate::sim::{Millis, PodPhase, PodSpec, SimEvent, World};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    /// Switch a kubelet into a fault.
    Fault {
        node: String,
        fault: Fault,
    },
    ClearFault {
        node: String,
    },
    /// A new node (named `node-<next index>`) with no pods; `swap`: its kubelet has swap
    /// statistics (reports the swap families).
    AddNode {
        #[serde(default)]
        swap: bool,
    },
    RemoveNode {
        node: String,
    },
    RebootNode {
        node: String,
    },
    SetNodeReady {
        node: String,
        ready: bool,
    },
    /// A new pod; unspecified fields are drawn from the seed.
    AddPod(PodRequest),
    StartPod {
        namespace: String,
        name: String,
    },
    FinishPod {
        namespace: String,
        name: String,
        #[serde(default)]
        failed: bool,
    },
    DeletePod {
        namespace: String,
        name: String,
    },
    RestartContainer {
        namespace: String,
        name: String,
        container: String,
    },
    /// Replace the aggregation proxy's replicas (`host:port`).
    SetReplicas {
        addresses: Vec<String>,
    },
    /// End every open watch on the apiserver (clients re-watch).
    DropWatches {},
}

/// What an action turns into.
pub enum Plan {
    Events(Vec<SimEvent>),
    Fault(String, Option<Fault>),
    Replicas(Vec<String>),
    DropWatches,
}

/// Resolves an action against the current world at time `now`.
pub fn plan(action: Action, world: &World, shape: &Shape, rng: &mut Rng, now: Millis) -> Result<Plan, String> {
    let events = match action {
        Action::Fault { node, fault } => return Ok(Plan::Fault(node, Some(fault))),
        Action::ClearFault { node } => return Ok(Plan::Fault(node, None)),
        Action::SetReplicas { addresses } => return Ok(Plan::Replicas(addresses)),
        Action::DropWatches {} => return Ok(Plan::DropWatches),
        Action::AddNode { swap } => vec![SimEvent::AddNode {
            node: crate::sim::NodeSpec {
                swap,
                ..new_node(world, shape, now)
            },
        }],
        Action::RemoveNode { node } => vec![SimEvent::RemoveNode { node, at: now }],
        Action::RebootNode { node } => vec![SimEvent::RebootNode { node, at: now }],
        Action::SetNodeReady { node, ready } => vec![SimEvent::SetNodeReady { node, ready }],
        Action::AddPod(request) => vec![SimEvent::AddPod {
            pod: new_pod(world, rng, now, request)?,
        }],
        Action::StartPod { namespace, name } => vec![SimEvent::StartPod {
            namespace,
            name,
            at: now,
        }],
        Action::FinishPod {
            namespace,
            name,
            failed,
        } => {
            let phase = if failed { PodPhase::Failed } else { PodPhase::Succeeded };
            vec![SimEvent::FinishPod {
                namespace,
                name,
                phase,
                at: now,
            }]
        }
        Action::DeletePod { namespace, name } => vec![SimEvent::DeletePod {
            namespace,
            name,
            at: now,
        }],
        Action::RestartContainer {
            namespace,
            name,
            container,
        } => {
            vec![SimEvent::RestartContainer {
                namespace,
                name,
                container,
                at: now,
            }]
        }
    };
    Ok(Plan::Events(events))
}

fn new_node(world: &World, shape: &Shape, now: Millis) -> crate::sim::NodeSpec {
    let index = (0u32..)
        .find(|i| !world.nodes.contains_key(&generate::node_name(*i)))
        .expect("a free index");
    let mut spec = generate::node_spec(&Shape { now, ..shape.clone() }, index);
    spec.created = now;
    spec.boot = now;
    spec
}

/// What `addPod` asks for; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PodRequest {
    pub node: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub containers: Option<u32>,
    /// Created Pending (started later with `startPod`).
    pub pending: bool,
    /// Each container's constant swap use in bytes (reported on a node with swap statistics).
    pub swap_bytes: Option<f64>,
}

fn new_pod(world: &World, rng: &mut Rng, now: Millis, req: PodRequest) -> Result<PodSpec, String> {
    let node = match req.node {
        Some(n) if world.nodes.contains_key(&n) => n,
        Some(n) => return Err(format!("node {n:?} not found")),
        None => {
            let least = world
                .nodes
                .values()
                .min_by_key(|n| n.pods.len())
                .ok_or("the cluster has no nodes")?;
            least.spec.name.clone()
        }
    };
    let name = req.name.unwrap_or_else(|| format!("pod-{}", rng.suffix(8)));
    let count = req.containers.unwrap_or(1).clamp(1, 10);
    let containers = (0..count)
        .map(|i| {
            let name = if i == 0 { name.clone() } else { format!("c{i}") };
            let container = generate::container(rng, &name, ContainerKind::Regular);
            let swap = req.swap_bytes.map(|value| crate::sim::Profile::Constant { value });
            crate::sim::model::ContainerSpec { swap, ..container }
        })
        .collect();
    let labels = req
        .labels
        .unwrap_or_else(|| BTreeMap::from([("app".to_string(), name.clone())]));
    Ok(PodSpec {
        namespace: req.namespace.unwrap_or_else(|| "default".into()),
        uid: generate::uid(rng),
        name,
        node,
        labels,
        owner: None,
        created: now,
        phase: if req.pending {
            PodPhase::Pending
        } else {
            PodPhase::Running
        },
        started: if req.pending { None } else { Some(now) },
        containers,
    })
}
