//! Store benchmark at metrics-server's `Normal` scenarios (`pkg/storage/storage_benchmark_test.go`):
//! 100 nodes x 70 pods and 1000 nodes x 30 pods, 2 containers per pod, 10 namespaces. `insert`
//! stores one steady-state scrape of every node (the store already holds the previous one);
//! `read_pods` lists every servable pod, `read_pod` gets each pod once, `snapshot_restore` copies
//! every node's snapshot into a standby store (the per-scrape replication push without the wire),
//! `read_nodes` lists every node.
//! Throughput is in pods (nodes for `read_nodes`). Before measuring, prints the store's heap size
//! per pod, counted by a wrapping allocator (one relaxed atomic add per allocation, also while
//! measuring).
//!
//! Run: `cargo bench -p shard --bench store`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shard::point::{MetricsPoint, NANOS_PER_SECOND, Nanos};
use shard::store::{NodeScrape, PodScrape, Store};

/// Counts live heap bytes, to report the store's memory per pod.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const RESOLUTION: Nanos = 15 * NANOS_PER_SECOND;
const BASE: Nanos = 1_700_000_000 * NANOS_PER_SECOND;
const CONTAINERS: [&str; 2] = ["app", "sidecar"];

/// Names of one cluster: per node, its pods as `(namespace, name)`.
struct Cluster {
    nodes: Vec<String>,
    pods: Vec<Vec<(String, String)>>,
}

impl Cluster {
    fn new(nodes: usize, pods_per_node: usize) -> Self {
        let pods = (0..nodes)
            .map(|n| {
                (0..pods_per_node)
                    .map(|p| (format!("namespace-{}", p % 10), pod_name(n, p)))
                    .collect()
            })
            .collect();
        Self {
            nodes: (0..nodes).map(|n| format!("node-{n}")).collect(),
            pods,
        }
    }

    fn pod_count(&self) -> usize {
        self.pods.iter().map(Vec::len).sum()
    }

    /// Stores scrape number `round` of every node; each round is one resolution later. Building
    /// the borrowed scrape (two small vectors per node, as the parser would) is included.
    fn insert_round(&self, store: &mut Store, round: i64) {
        let ts = BASE + round * RESOLUTION;
        for (node, pods) in self.nodes.iter().zip(&self.pods) {
            let containers: Vec<[(&str, MetricsPoint); 2]> = (0..pods.len())
                .map(|i| CONTAINERS.map(|c| (c, point(ts, round, i))))
                .collect();
            let scrape_pods: Vec<PodScrape> = pods
                .iter()
                .zip(&containers)
                .map(|((ns, name), containers)| PodScrape {
                    namespace: ns,
                    name,
                    containers,
                })
                .collect();
            let scrape = NodeScrape {
                node: Some(point(ts, round, 0)),
                pods: &scrape_pods,
            };
            store.insert_node(node, scrape, ts);
        }
    }
}

fn pod_name(node: usize, pod: usize) -> String {
    format!("deployment-{}-5d8f7c9b4-{node:05}{pod:03}", pod % 100)
}

fn point(ts: Nanos, round: i64, i: usize) -> MetricsPoint {
    let cpu = (round as u64 + 1) * (i as u64 + 1) * 150_000_000;
    MetricsPoint {
        start_time: BASE - 3600 * NANOS_PER_SECOND,
        timestamp: ts,
        cumulative_cpu: cpu,
        memory: 50 << 20,
        swap: None,
    }
}

fn filled(cluster: &Cluster) -> Store {
    let mut store = Store::new(RESOLUTION);
    cluster.insert_round(&mut store, 0);
    cluster.insert_round(&mut store, 1);
    store
}

fn report_memory(label: &str, cluster: &Cluster) {
    let before = LIVE.load(Ordering::Relaxed);
    let store = filled(cluster);
    let bytes = LIVE.load(Ordering::Relaxed) - before;
    let pods = cluster.pod_count();
    println!(
        "{label}: store heap {} KiB for {pods} pods, {} B per pod",
        bytes / 1024,
        bytes / pods as isize
    );
    assert_eq!(store.pods().count(), pods);

    let mut store = store;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    cluster.insert_round(&mut store, 2);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    let building = 2 * cluster.nodes.len() as isize;
    println!("{label}: a steady insert round makes {allocations} allocations ({building} build the scrapes)");
}

fn bench_store(c: &mut Criterion) {
    for (nodes, pods_per_node) in [(100, 70), (1000, 30)] {
        let label = format!("{nodes}x{pods_per_node}");
        let cluster = Cluster::new(nodes, pods_per_node);
        report_memory(&label, &cluster);
        let mut group = c.benchmark_group("store");
        group.throughput(Throughput::Elements(cluster.pod_count() as u64));

        let mut store = filled(&cluster);
        let mut round = 2;
        group.bench_function(BenchmarkId::new("insert", &label), |b| {
            b.iter(|| {
                cluster.insert_round(&mut store, round);
                round += 1;
            })
        });
        group.bench_function(BenchmarkId::new("read_pods", &label), |b| {
            b.iter(|| black_box(&store).pods().count())
        });
        group.bench_function(BenchmarkId::new("read_pod", &label), |b| {
            b.iter(|| {
                cluster
                    .pods
                    .iter()
                    .flatten()
                    .filter(|(ns, name)| store.pod(ns, name).is_some())
                    .count()
            })
        });
        group.bench_function(BenchmarkId::new("snapshot_restore", &label), |b| {
            let mut standby = Store::new(RESOLUTION);
            b.iter(|| {
                for node in &cluster.nodes {
                    standby.restore_node(node, store.snapshot_node(node).expect("stored"));
                }
            })
        });
        group.throughput(Throughput::Elements(nodes as u64));
        group.bench_function(BenchmarkId::new("read_nodes", &label), |b| {
            b.iter(|| black_box(&store).nodes().count())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    targets = bench_store
}
criterion_main!(benches);
