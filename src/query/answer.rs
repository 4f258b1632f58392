//! The owner's side of a fan-out query (its shards' rows, as wire rows, written straight from
//! the stores) and node wire rows back into metrics (the asker's pod rows are
//! [`super::GatheredPod`]s, joined with this replica's pod cache). For a page (`limit=N`) an
//! owner sends only its first N + 1 pods after the continue key: the first N + 1 of the whole
//! list are among them, so the asker can cut the page and tell whether more follow.

use super::{ListParams, PodQuery, Reader};
use crate::api::error::MetricsResource;
use crate::ha::wire::{QueryRequest, QueryResponse, QueryTarget, WireNode, WirePod};
use shard::store::{NodeMetrics, Usage};

/// Answers a peer's query from this replica's stores: rows of the warm shards asked for, and the
/// shards this replica has no current data for as `cold`.
pub fn shard_answer(reader: &Reader, request: &QueryRequest) -> Result<QueryResponse, String> {
    let (warm, cold): (Vec<u32>, Vec<u32>) = request
        .shards
        .iter()
        .copied()
        .filter(|&s| s < reader.shards.shards)
        .partition(|&s| reader.shards.stores[s as usize].read().expect("store lock").is_warm());
    let mut response = QueryResponse {
        cold,
        ..Default::default()
    };
    match &request.target {
        QueryTarget::Nodes => {
            for &shard in &warm {
                let store = reader.shards.stores[shard as usize].read().expect("store lock");
                response.nodes.extend(store.nodes().map(|(name, m)| WireNode {
                    shard,
                    name: name.to_string(),
                    timestamp: m.timestamp,
                    window: m.window,
                    cpu_nanocores: m.usage.cpu_nanocores,
                    memory_bytes: m.usage.memory_bytes,
                    swap_bytes: m.usage.swap_bytes,
                }));
            }
        }
        QueryTarget::Pods { namespace, name, query } => {
            let params = ListParams::parse(query, MetricsResource::Pods).map_err(|e| e.to_string())?;
            let query = PodQuery {
                namespace: namespace.as_deref(),
                name: name.as_deref(),
                params: &params,
                query,
            };
            reader.visit_local_pods(&warm, &query, |shard, ns, name, _, metrics| {
                let containers = metrics.containers.iter();
                response.pods.push(WirePod {
                    shard,
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    timestamp: metrics.timestamp,
                    window: metrics.window,
                    containers: containers
                        .map(|(n, u)| (n.to_string(), u.cpu_nanocores, u.memory_bytes, u.swap_bytes))
                        .collect(),
                })
            });
            if let Some(limit) = params.limit {
                let pods = &mut response.pods;
                pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
                pods.dedup_by(|a, b| a.namespace == b.namespace && a.name == b.name);
                pods.truncate(limit.saturating_add(1));
            }
        }
    }
    Ok(response)
}

pub(super) fn node_metrics(wire: &WireNode) -> NodeMetrics {
    NodeMetrics {
        timestamp: wire.timestamp,
        window: wire.window,
        usage: Usage {
            cpu_nanocores: wire.cpu_nanocores,
            memory_bytes: wire.memory_bytes,
            swap_bytes: wire.swap_bytes,
        },
    }
}
