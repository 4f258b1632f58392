//! The owner's side of a fan-out query (its shards' rows, as wire rows, written straight from
//! the stores) and node wire rows back into metrics (the asker's pod rows are
//! [`super::GatheredPod`]s, joined with this replica's pod cache). For a page (`limit=N`) an
//! owner sends only its first N + 1 pods after the continue key: the first N + 1 of the whole
//! list are among them, so the asker can cut the page and tell whether more follow.

use super::{ListParams, PodQuery, Reader};
use crate::api::error::MetricsResource;
use crate::peer::wire::{MAX_ANSWER_BYTES, QueryRequest, QueryResponse, QueryTarget, WireNode, WirePod};
use shard::store::{NodeMetrics, Usage};
use std::collections::HashSet;

/// Answers a query from this replica's stores: the rows of every shard asked for (`stale`
/// ones are listed as `cold`, without rows), shard by shard until the answer passes [`MAX_ANSWER_BYTES`];
/// the shards left over are listed as `deferred`, to be asked again.
pub fn shard_answer(reader: &Reader, request: &QueryRequest, stale: &HashSet<u32>) -> Result<QueryResponse, String> {
    answer_within(reader, request, stale, MAX_ANSWER_BYTES)
}

/// [`shard_answer`] with the size limit as a parameter.
pub(crate) fn answer_within(
    reader: &Reader,
    request: &QueryRequest,
    stale: &HashSet<u32>,
    max_bytes: usize,
) -> Result<QueryResponse, String> {
    let shards: Vec<u32> = request
        .shards
        .iter()
        .copied()
        .filter(|&s| s < reader.shards.shards)
        .collect();
    let mut response = QueryResponse {
        cold: shards.iter().copied().filter(|s| stale.contains(s)).collect(),
        ..Default::default()
    };
    let params = match &request.target {
        QueryTarget::Pods { query, .. } => {
            Some(ListParams::parse(query, MetricsResource::Pods).map_err(|e| e.to_string())?)
        }
        QueryTarget::Nodes => None,
    };
    let mut size = 0;
    for (i, &shard) in shards.iter().enumerate() {
        if size > max_bytes {
            response.deferred.extend(&shards[i..]);
            response.cold.retain(|s| !response.deferred.contains(s));
            break;
        }
        if stale.contains(&shard) {
            // Named as stale, its rows not sent: a stale copy is never served.
            continue;
        }
        size += match (&request.target, &params) {
            (QueryTarget::Pods { namespace, name, query }, Some(params)) => {
                let query = PodQuery {
                    namespace: namespace.as_deref(),
                    name: name.as_deref(),
                    params,
                    query,
                };
                pod_rows(reader, shard, &query, &mut response.pods)
            }
            _ => node_rows(reader, shard, &mut response.nodes),
        };
    }
    if let Some(limit) = params.as_ref().and_then(|p| p.limit) {
        // A page: only the first N + 1 pods after the continue key can be on it.
        let pods = &mut response.pods;
        pods.sort_by(|a, b| {
            (&a.namespace, &a.name)
                .cmp(&(&b.namespace, &b.name))
                .then(b.timestamp.cmp(&a.timestamp))
        });
        pods.dedup_by(|later, kept| later.namespace == kept.namespace && later.name == kept.name);
        pods.truncate(limit.saturating_add(1));
    }
    Ok(response)
}

/// Appends `shard`'s matching pods as wire rows; returns about how many bytes they take.
fn pod_rows(reader: &Reader, shard: u32, query: &PodQuery<'_>, out: &mut Vec<WirePod>) -> usize {
    let mut size = 0;
    reader.visit_local_pods(&[shard], query, |shard, ns, name, _, metrics| {
        let containers: Vec<(String, u64, u64, Option<u64>)> = metrics
            .containers
            .iter()
            .map(|(n, u)| (n.to_string(), u.cpu_nanocores, u.memory_bytes, u.swap_bytes))
            .collect();
        size += ROW_OVERHEAD + ns.len() + name.len() + containers.iter().map(|c| c.0.len() + 24).sum::<usize>();
        out.push(WirePod {
            shard,
            namespace: ns.to_string(),
            name: name.to_string(),
            timestamp: metrics.timestamp,
            window: metrics.window,
            containers,
        })
    });
    size
}

/// Appends `shard`'s servable nodes as wire rows; returns about how many bytes they take.
fn node_rows(reader: &Reader, shard: u32, out: &mut Vec<WireNode>) -> usize {
    let store = reader.shards.stores[shard as usize].read().expect("store lock");
    let mut size = 0;
    out.extend(store.nodes().map(|(name, m)| {
        size += ROW_OVERHEAD + name.len();
        WireNode {
            shard,
            name: name.to_string(),
            timestamp: m.timestamp,
            window: m.window,
            cpu_nanocores: m.usage.cpu_nanocores,
            memory_bytes: m.usage.memory_bytes,
            swap_bytes: m.usage.swap_bytes,
        }
    }));
    size
}

/// Bytes a wire row takes besides its strings (bincode lengths, shard, times, numbers).
const ROW_OVERHEAD: usize = 48;

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

#[cfg(test)]
mod tests;
