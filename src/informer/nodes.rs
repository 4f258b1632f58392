//! The cache of Nodes (what scraping and node queries need: name, labels, addresses, kubelet
//! port, metrics path annotation, readiness), fed by a watch on Nodes.

use k8s_openapi::api::core::v1::Node;
use shard::scrape::NodeInfo;
use shard::scrape::target::METRICS_PATH_ANNOTATION;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct NodeCache {
    pub nodes: BTreeMap<Arc<str>, NodeInfo>,
    relist: Option<BTreeMap<Arc<str>, NodeInfo>>,
    pub synced: bool,
    /// Bumped on every change, so `app::follow_nodes` recomputes the scrape targets.
    pub generation: u64,
}

/// The parts of a Node the server uses.
pub fn node_info(node: &Node) -> Option<NodeInfo> {
    let name: Arc<str> = Arc::from(node.metadata.name.as_deref()?);
    let status = node.status.as_ref();
    let addresses = status
        .and_then(|s| s.addresses.as_ref())
        .map(|a| a.iter().map(|a| (a.type_.clone(), a.address.clone())).collect())
        .unwrap_or_default();
    let kubelet_port = status
        .and_then(|s| s.daemon_endpoints.as_ref())
        .and_then(|d| d.kubelet_endpoint.as_ref())
        .map_or(0, |e| e.port as u16);
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    Some(NodeInfo {
        name,
        labels: node.metadata.labels.clone().unwrap_or_default(),
        addresses,
        kubelet_port,
        metrics_path: node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(METRICS_PATH_ANNOTATION).cloned()),
        ready,
    })
}

impl NodeCache {
    pub fn apply(&mut self, event: kube::runtime::watcher::Event<Node>) {
        use kube::runtime::watcher::Event;
        match event {
            Event::Init => self.relist = Some(BTreeMap::new()),
            Event::InitApply(node) => {
                if let Some(info) = node_info(&node) {
                    self.relist
                        .get_or_insert_with(BTreeMap::new)
                        .insert(info.name.clone(), info);
                }
            }
            Event::InitDone => {
                self.nodes = self.relist.take().unwrap_or_default();
                self.synced = true;
                self.generation += 1;
            }
            Event::Apply(node) => {
                if let Some(info) = node_info(&node)
                    && self.nodes.get(&info.name) != Some(&info)
                {
                    self.nodes.insert(info.name.clone(), info);
                    self.generation += 1;
                }
            }
            Event::Delete(node) => {
                if let Some(name) = node.metadata.name.as_deref() {
                    self.nodes.remove(name);
                    self.generation += 1;
                }
            }
        }
    }
}
