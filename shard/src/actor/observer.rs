//! What shard actors report about their work, implemented by the server's self-metrics (the
//! shard crate stays free of a metrics library).

use std::time::{Duration, SystemTime};

pub trait ScrapeObserver: Send + Sync + 'static {
    /// One kubelet request ended (`metrics_server_kubelet_*`).
    fn kubelet_request(&self, node: &str, success: bool, took: Duration, at: SystemTime);
    /// A shard's scrape-and-store cycle ended (`metrics_server_manager_tick_duration_seconds`).
    fn tick(&self, took: Duration);
    /// A node left this replica's shards: its per-node series go too.
    fn node_removed(&self, node: &str);
    /// Series of one scrape dropped as malformed or invalid (the rest of the node was kept).
    fn dropped_series(&self, _node: &str, _count: u64) {}
    /// A scrape found no slot under `--kubelet-max-concurrency` in time and was not sent.
    fn scrape_overloaded(&self) {}
}

/// Reports nothing (tests).
pub struct NoObserver;

impl ScrapeObserver for NoObserver {
    fn kubelet_request(&self, _: &str, _: bool, _: Duration, _: SystemTime) {}
    fn tick(&self, _: Duration) {}
    fn node_removed(&self, _: &str) {}
}
