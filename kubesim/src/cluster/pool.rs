//! Where the kubelets live: in this process for small clusters, or spread over kubelet worker
//! processes so that no process passes the open-files limit.

use crate::kubelet::worker::{Worker, WorkerRequest};
use crate::kubelet::{Fault, KubeletHost, KubeletStats};
use crate::sim::SimEvent;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

pub enum Pool {
    Local(Arc<KubeletHost>),
    Workers {
        workers: Vec<Worker>,
        /// node -> worker index.
        placement: Mutex<HashMap<String, usize>>,
    },
}

impl Pool {
    /// Sends each event to the host of its node (`routed` pairs events with their node).
    pub async fn apply(&self, routed: Vec<(Option<String>, SimEvent)>) -> Vec<String> {
        match self {
            Pool::Local(host) => {
                host.apply(&routed.into_iter().map(|(_, e)| e).collect::<Vec<_>>())
                    .await
            }
            Pool::Workers { workers, placement } => {
                let batches = split(workers.len(), placement, routed);
                let calls =
                    batches
                        .into_iter()
                        .enumerate()
                        .filter(|(_, b)| !b.is_empty())
                        .map(|(i, events)| async move {
                            match workers[i].call(WorkerRequest::Apply { events }).await {
                                Ok(reply) => reply.errors,
                                Err(e) => vec![e.to_string()],
                            }
                        });
                futures::future::join_all(calls).await.into_iter().flatten().collect()
            }
        }
    }

    pub async fn set_fault(&self, node: &str, fault: Option<Fault>) -> Result<(), String> {
        match self {
            Pool::Local(host) => host.set_fault(node, fault),
            Pool::Workers { workers, placement } => {
                let index = placement.lock().expect("placement lock").get(node).copied();
                let index = index.ok_or_else(|| format!("node {node:?} not found"))?;
                let request = WorkerRequest::Fault {
                    node: node.to_string(),
                    fault,
                };
                let reply = workers[index].call(request).await.map_err(|e| e.to_string())?;
                reply.errors.into_iter().next().map_or(Ok(()), Err)
            }
        }
    }

    /// Every kubelet accepts `token` (and no longer the old one).
    pub async fn set_token(&self, token: &str) -> Result<(), String> {
        match self {
            Pool::Local(host) => {
                host.set_token(token);
                Ok(())
            }
            Pool::Workers { workers, .. } => {
                let request = WorkerRequest::Token {
                    token: token.to_string(),
                };
                for worker in workers {
                    let reply = worker.call(request.clone()).await.map_err(|e| e.to_string())?;
                    if let Some(e) = reply.errors.into_iter().next() {
                        return Err(e);
                    }
                }
                Ok(())
            }
        }
    }

    pub async fn stats(&self) -> BTreeMap<String, KubeletStats> {
        match self {
            Pool::Local(host) => host.stats(),
            Pool::Workers { workers, .. } => {
                let calls = workers.iter().map(|w| w.call(WorkerRequest::Stats));
                let replies = futures::future::join_all(calls).await;
                replies.into_iter().filter_map(|r| r.ok()?.stats).flatten().collect()
            }
        }
    }

    pub fn process_count(&self) -> usize {
        match self {
            Pool::Local(_) => 1,
            Pool::Workers { workers, .. } => workers.len(),
        }
    }

    pub fn shutdown(&self) {
        match self {
            Pool::Local(host) => host.shutdown(),
            Pool::Workers { workers, .. } => workers.iter().for_each(Worker::kill),
        }
    }
}

/// Groups events per worker, placing new nodes on the least loaded worker.
fn split(
    count: usize,
    placement: &Mutex<HashMap<String, usize>>,
    routed: Vec<(Option<String>, SimEvent)>,
) -> Vec<Vec<SimEvent>> {
    let mut placement = placement.lock().expect("placement lock");
    let mut load = vec![0usize; count];
    placement.values().for_each(|&i| load[i] += 1);
    let mut batches = vec![Vec::new(); count];
    for (node, event) in routed {
        let Some(node) = node else { continue };
        let index = match (&event, placement.get(&node)) {
            (_, Some(&i)) => i,
            (SimEvent::AddNode { .. }, None) => {
                let i = (0..count).min_by_key(|&i| load[i]).expect("at least one worker");
                load[i] += 1;
                placement.insert(node.clone(), i);
                i
            }
            _ => continue,
        };
        if matches!(event, SimEvent::RemoveNode { .. }) {
            placement.remove(&node);
        }
        batches[index].push(event);
    }
    batches
}
