//! [`World`]: the whole simulated cluster, changed only by [`SimEvent`]s.

use super::events::SimEvent;
use super::model::{Millis, NodeSpec, NodeState, PodKey, PodPhase, PodSpec, PodState};
use std::collections::BTreeMap;

/// Why an event could not be applied. Not worth retrying: the event names something that is
/// not there (or already is).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorldError {
    #[error("node {0:?} not found")]
    NodeNotFound(String),
    #[error("node {0:?} already exists")]
    NodeExists(String),
    #[error("pod {0}/{1} not found")]
    PodNotFound(String, String),
    #[error("pod {0}/{1} already exists")]
    PodExists(String, String),
    #[error("container {2:?} not found in pod {0}/{1}")]
    ContainerNotFound(String, String, String),
    #[error("pod {0}/{1} is {2:?}, not {3:?}")]
    WrongPhase(String, String, PodPhase, PodPhase),
    #[error("invalid usage profile for container {0:?}")]
    InvalidProfile(String),
}

/// What an applied event changed, so the apiserver re-renders just those objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Node(String),
    NodeDeleted(String),
    Pod(PodKey),
    PodDeleted(PodKey),
}

#[derive(Debug, Clone, Default)]
pub struct World {
    pub nodes: BTreeMap<String, NodeState>,
    pub pods: BTreeMap<PodKey, PodState>,
}

impl World {
    /// Applies one event; on error nothing changed.
    pub fn apply(&mut self, event: &SimEvent) -> Result<Vec<Changed>, WorldError> {
        match event {
            SimEvent::AddNode { node } => self.add_node(node),
            SimEvent::RemoveNode { node, .. } => self.remove_node(node),
            SimEvent::RebootNode { node, at } => self.reboot_node(node, *at),
            SimEvent::SetNodeReady { node, ready } => {
                self.node_mut(node)?.ready = *ready;
                Ok(vec![Changed::Node(node.clone())])
            }
            SimEvent::AddPod { pod } => self.add_pod(pod),
            SimEvent::StartPod { namespace, name, at } => self.start_pod(namespace, name, *at),
            SimEvent::FinishPod {
                namespace,
                name,
                phase,
                at,
            } => self.finish_pod(namespace, name, *phase, *at),
            SimEvent::DeletePod { namespace, name, at } => self.delete_pod(namespace, name, *at),
            SimEvent::RestartContainer {
                namespace,
                name,
                container,
                at,
            } => self.restart_container(namespace, name, container, *at),
        }
    }

    /// The node an event concerns, looked up before the event changes the world (pod events
    /// name only the pod).
    pub fn node_of_event(&self, event: &SimEvent) -> Option<String> {
        if let Some(node) = event.node_name() {
            return Some(node.to_string());
        }
        let key = match event {
            SimEvent::StartPod { namespace, name, .. }
            | SimEvent::FinishPod { namespace, name, .. }
            | SimEvent::DeletePod { namespace, name, .. }
            | SimEvent::RestartContainer { namespace, name, .. } => (namespace.clone(), name.clone()),
            _ => return None,
        };
        self.pods.get(&key).map(|p| p.spec.node.clone())
    }

    /// Running pods on `node`, in creation order.
    pub fn running_pods<'a>(&'a self, node: &'a NodeState) -> impl Iterator<Item = &'a PodState> + 'a {
        node.pods
            .iter()
            .filter_map(|k| self.pods.get(k))
            .filter(|p| p.phase == PodPhase::Running)
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut NodeState, WorldError> {
        self.nodes
            .get_mut(name)
            .ok_or_else(|| WorldError::NodeNotFound(name.to_string()))
    }

    fn pod_entry(&mut self, ns: &str, name: &str) -> Result<&mut PodState, WorldError> {
        self.pods
            .get_mut(&(ns.to_string(), name.to_string()))
            .ok_or_else(|| WorldError::PodNotFound(ns.to_string(), name.to_string()))
    }

    fn add_node(&mut self, spec: &NodeSpec) -> Result<Vec<Changed>, WorldError> {
        if self.nodes.contains_key(&spec.name) {
            return Err(WorldError::NodeExists(spec.name.clone()));
        }
        if !spec.system_cpu.is_valid() || !spec.system_memory.is_valid() {
            return Err(WorldError::InvalidProfile(spec.name.clone()));
        }
        self.nodes.insert(spec.name.clone(), NodeState::new(spec.clone()));
        Ok(vec![Changed::Node(spec.name.clone())])
    }

    fn remove_node(&mut self, name: &str) -> Result<Vec<Changed>, WorldError> {
        let node = self
            .nodes
            .remove(name)
            .ok_or_else(|| WorldError::NodeNotFound(name.to_string()))?;
        let mut changed = Vec::new();
        for key in node.pods {
            if self.pods.remove(&key).is_some() {
                changed.push(Changed::PodDeleted(key));
            }
        }
        changed.push(Changed::NodeDeleted(name.to_string()));
        Ok(changed)
    }

    fn reboot_node(&mut self, name: &str, at: Millis) -> Result<Vec<Changed>, WorldError> {
        let node = self
            .nodes
            .get_mut(name)
            .ok_or_else(|| WorldError::NodeNotFound(name.to_string()))?;
        node.reboot(at);
        let mut changed = vec![Changed::Node(name.to_string())];
        for key in node.pods.clone() {
            let Some(pod) = self.pods.get_mut(&key) else {
                continue;
            };
            if pod.phase != PodPhase::Running {
                continue;
            }
            pod.stop(at);
            for c in pod.containers.iter_mut().filter(|c| c.reported()) {
                c.restarts += 1;
                c.start(at);
                node.record_start(&c.spec, at);
            }
            changed.push(Changed::Pod(key));
        }
        Ok(changed)
    }

    fn add_pod(&mut self, spec: &PodSpec) -> Result<Vec<Changed>, WorldError> {
        let key = (spec.namespace.clone(), spec.name.clone());
        if self.pods.contains_key(&key) {
            return Err(WorldError::PodExists(key.0, key.1));
        }
        if let Some(c) = spec
            .containers
            .iter()
            .find(|c| !c.cpu.is_valid() || !c.memory.is_valid())
        {
            return Err(WorldError::InvalidProfile(c.name.clone()));
        }
        let node = self
            .nodes
            .get_mut(&spec.node)
            .ok_or_else(|| WorldError::NodeNotFound(spec.node.clone()))?;
        let pod = PodState::new(spec.clone());
        for c in pod.containers.iter() {
            if let Some(inc) = c.current() {
                node.record_start(&c.spec, inc.start);
            }
        }
        node.pods.push(key.clone());
        self.pods.insert(key.clone(), pod);
        Ok(vec![Changed::Pod(key)])
    }

    fn start_pod(&mut self, ns: &str, name: &str, at: Millis) -> Result<Vec<Changed>, WorldError> {
        let pod = self.pod_entry(ns, name)?;
        if pod.phase != PodPhase::Pending {
            return Err(WorldError::WrongPhase(
                ns.into(),
                name.into(),
                pod.phase,
                PodPhase::Pending,
            ));
        }
        pod.start(at);
        let node_name = pod.spec.node.clone();
        let specs: Vec<_> = pod.reported_containers().map(|c| c.spec.clone()).collect();
        if let Some(node) = self.nodes.get_mut(&node_name) {
            specs.iter().for_each(|s| node.record_start(s, at));
        }
        Ok(vec![Changed::Pod((ns.to_string(), name.to_string()))])
    }

    fn stop_pod(&mut self, ns: &str, name: &str, at: Millis) -> Result<(), WorldError> {
        let pod = self.pod_entry(ns, name)?;
        let running: Vec<_> = pod
            .containers
            .iter()
            .filter(|c| c.current().is_some())
            .map(|c| c.spec.clone())
            .collect();
        pod.stop(at);
        let node_name = pod.spec.node.clone();
        if let Some(node) = self.nodes.get_mut(&node_name) {
            running.iter().for_each(|s| node.record_stop(s, at));
        }
        Ok(())
    }

    fn finish_pod(&mut self, ns: &str, name: &str, phase: PodPhase, at: Millis) -> Result<Vec<Changed>, WorldError> {
        let current = self.pod_entry(ns, name)?.phase;
        if current != PodPhase::Running {
            return Err(WorldError::WrongPhase(
                ns.into(),
                name.into(),
                current,
                PodPhase::Running,
            ));
        }
        self.stop_pod(ns, name, at)?;
        let pod = self.pod_entry(ns, name)?;
        pod.phase = phase;
        pod.finished = Some(at);
        Ok(vec![Changed::Pod((ns.to_string(), name.to_string()))])
    }

    fn delete_pod(&mut self, ns: &str, name: &str, at: Millis) -> Result<Vec<Changed>, WorldError> {
        self.stop_pod(ns, name, at)?;
        let key = (ns.to_string(), name.to_string());
        let pod = self.pods.remove(&key).expect("stop_pod found it");
        if let Some(node) = self.nodes.get_mut(&pod.spec.node) {
            node.pods.retain(|k| k != &key);
        }
        Ok(vec![Changed::PodDeleted(key)])
    }

    fn restart_container(
        &mut self,
        ns: &str,
        name: &str,
        container: &str,
        at: Millis,
    ) -> Result<Vec<Changed>, WorldError> {
        let pod = self.pod_entry(ns, name)?;
        if pod.phase != PodPhase::Running {
            return Err(WorldError::WrongPhase(
                ns.into(),
                name.into(),
                pod.phase,
                PodPhase::Running,
            ));
        }
        let node_name = pod.spec.node.clone();
        let c = pod
            .containers
            .iter_mut()
            .find(|c| c.spec.name == container && c.reported())
            .ok_or_else(|| WorldError::ContainerNotFound(ns.into(), name.into(), container.into()))?;
        let spent = c
            .current()
            .map(|inc| c.spec.cpu.integral(super::model::secs_since(inc.start, at)));
        c.restarts += 1;
        c.start(at);
        let spec = c.spec.clone();
        pod.retired_cpu += spent.unwrap_or(0.0);
        if let Some(node) = self.nodes.get_mut(&node_name) {
            node.record_stop(&spec, at);
            node.record_start(&spec, at);
        }
        Ok(vec![Changed::Pod((ns.to_string(), name.to_string()))])
    }
}
