//! Store unit tests: `node` and `pod` mirror metrics-server's `pkg/storage` Ginkgo suites case by
//! case (same points, same expectations), `ready` its readiness suite, `rate` its `types_test.go`;
//! `ours` covers the per-node behaviour metrics-server does not have, `snapshot` the hand-over,
//! `props` the rate maths and node rule under proptest.

mod node;
mod ours;
mod pod;
mod props;
mod rate;
mod ready;
mod snapshot;
mod stage;

use super::*;

/// 1 core for 1 second, in nanocore-seconds (`CoreSecond`).
pub const CORE_SECOND: u64 = 1_000_000_000;
pub const MIB: u64 = 1 << 20;
/// metrics-server's storage tests use `NewStorage(60 * time.Second)`.
pub const RESOLUTION: Nanos = 60 * NANOS_PER_SECOND;
/// Stands for the tests' `time.Now()`.
pub const START: Nanos = 1_700_000_000 * NANOS_PER_SECOND;

pub fn secs(s: i64) -> Nanos {
    s * NANOS_PER_SECOND
}

/// `START + s` seconds.
pub fn at(s: i64) -> Nanos {
    START + secs(s)
}

pub fn point(start_time: Nanos, timestamp: Nanos, cumulative_cpu: u64, memory: u64) -> MetricsPoint {
    MetricsPoint {
        start_time,
        timestamp,
        cumulative_cpu,
        memory,
        swap: None,
    }
}

pub fn usage(cpu_nanocores: u64, memory_bytes: u64) -> Usage {
    Usage {
        cpu_nanocores,
        memory_bytes,
        swap_bytes: None,
    }
}

/// A scrape of `node1` with its node point and no pods (metrics-server's `nodeMetricBatch`).
pub fn store_node(store: &mut Store, node: MetricsPoint) {
    store.insert_node(
        "node1",
        NodeScrape {
            node: Some(node),
            pods: &[],
        },
        node.timestamp,
    );
}

/// A scrape of `node1` with pod `ns1/pod1` and no node point (`podMetricsBatch`).
pub fn store_pod(store: &mut Store, containers: &[(&str, MetricsPoint)]) {
    let pods = [PodScrape {
        namespace: "ns1",
        name: "pod1",
        containers,
    }];
    let now = containers.iter().map(|(_, p)| p.timestamp).max().unwrap_or(START);
    store.insert_node(
        "node1",
        NodeScrape {
            node: None,
            pods: &pods,
        },
        now,
    );
}

/// A scrape of `node` with the given pods of namespace `ns`, stored at local time `now`.
pub fn store_scrape(
    store: &mut Store,
    node: &str,
    point: Option<MetricsPoint>,
    pods: &[(&str, &[(&str, MetricsPoint)])],
    now: Nanos,
) {
    let pods: Vec<PodScrape> = pods
        .iter()
        .map(|(name, containers)| PodScrape {
            namespace: "ns",
            name,
            containers,
        })
        .collect();
    store.insert_node(
        node,
        NodeScrape {
            node: point,
            pods: &pods,
        },
        now,
    );
}

/// `PodReady()`: some pod has a previous point.
pub fn pod_ready(store: &Store) -> bool {
    store.servable_counts().1 > 0
}

/// `NodeReady()`: some node has a previous point.
pub fn node_ready(store: &Store) -> bool {
    store.servable_counts().0 > 0
}

pub fn names(pod: &PodMetrics) -> Vec<&str> {
    pod.containers.iter().map(|(name, _)| &**name).collect()
}
