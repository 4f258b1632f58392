//! Changes to the simulated cluster. Every event carries the time it takes effect, so the
//! apiserver process and the kubelet worker processes that apply the same events agree exactly.

use super::model::{Millis, NodeSpec, PodPhase, PodSpec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum SimEvent {
    /// A node joins: its kubelet starts listening and its Node object appears.
    #[serde(rename_all = "camelCase")]
    AddNode { node: NodeSpec },
    /// A node leaves with all its pods: its kubelet stops listening.
    #[serde(rename_all = "camelCase")]
    RemoveNode { node: String, at: Millis },
    /// The node reboots: counters reset, every container restarts at `at`.
    #[serde(rename_all = "camelCase")]
    RebootNode { node: String, at: Millis },
    /// The node's Ready condition.
    #[serde(rename_all = "camelCase")]
    SetNodeReady { node: String, ready: bool },
    /// A pod is created, in the phase its spec says.
    #[serde(rename_all = "camelCase")]
    AddPod { pod: PodSpec },
    /// A Pending pod's containers start.
    #[serde(rename_all = "camelCase")]
    StartPod {
        namespace: String,
        name: String,
        at: Millis,
    },
    /// A Running pod ends in `phase` (Succeeded or Failed).
    #[serde(rename_all = "camelCase")]
    FinishPod {
        namespace: String,
        name: String,
        phase: PodPhase,
        at: Millis,
    },
    /// A pod is deleted.
    #[serde(rename_all = "camelCase")]
    DeletePod {
        namespace: String,
        name: String,
        at: Millis,
    },
    /// One container restarts: new start time, counters from zero.
    #[serde(rename_all = "camelCase")]
    RestartContainer {
        namespace: String,
        name: String,
        container: String,
        at: Millis,
    },
}

impl SimEvent {
    /// The node whose kubelet must hear of this event, when the caller knows pods' nodes.
    pub fn node_name(&self) -> Option<&str> {
        match self {
            SimEvent::AddNode { node } => Some(&node.name),
            SimEvent::RemoveNode { node, .. }
            | SimEvent::RebootNode { node, .. }
            | SimEvent::SetNodeReady { node, .. } => Some(node),
            SimEvent::AddPod { pod } => Some(&pod.node),
            _ => None,
        }
    }
}
