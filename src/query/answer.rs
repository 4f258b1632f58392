//! The owner's side of a fan-out query (its shards' rows, as wire rows) and the asker's side
//! (wire rows back into rows joined with this replica's pod cache).

use super::{ListParams, PodQuery, PodRow, Reader};
use crate::api::error::MetricsResource;
use crate::ha::wire::{QueryRequest, QueryResponse, QueryTarget, WireNode, WirePod};
use crate::informer::pods::PodCache;
use shard::store::{NodeMetrics, PodMetrics, Usage};
use std::sync::Arc;

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
            response.pods = reader
                .local_pods(&warm, &query)
                .into_iter()
                .map(|(shard, row)| WirePod {
                    shard,
                    namespace: row.namespace.to_string(),
                    name: row.name.to_string(),
                    timestamp: row.metrics.timestamp,
                    window: row.metrics.window,
                    containers: row
                        .metrics
                        .containers
                        .iter()
                        .map(|(n, u)| (n.to_string(), u.cpu_nanocores, u.memory_bytes))
                        .collect(),
                })
                .collect();
        }
    }
    Ok(response)
}

/// A wire pod as a row, if this replica's cache knows the pod (as Running).
pub fn pod_row(pods: &PodCache, wire: &WirePod) -> Option<PodRow> {
    let (namespace, name, meta) = pods.get(&wire.namespace, &wire.name)?;
    Some(PodRow {
        namespace: namespace.clone(),
        name: name.clone(),
        labels: meta.labels.clone(),
        metrics: PodMetrics {
            timestamp: wire.timestamp,
            window: wire.window,
            containers: wire
                .containers
                .iter()
                .map(|(n, cpu, mem)| {
                    let usage = Usage {
                        cpu_nanocores: *cpu,
                        memory_bytes: *mem,
                    };
                    (Arc::from(n.as_str()), usage)
                })
                .collect(),
        },
    })
}

pub(super) fn node_metrics(wire: &WireNode) -> NodeMetrics {
    NodeMetrics {
        timestamp: wire.timestamp,
        window: wire.window,
        usage: Usage {
            cpu_nanocores: wire.cpu_nanocores,
            memory_bytes: wire.memory_bytes,
        },
    }
}
