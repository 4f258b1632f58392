//! Self-metrics on `/metrics`: metrics-server's six `metrics_server_*` families with its label
//! keys (per-node series are removed when the node goes, unlike metrics-server), plus our own.

mod ha;

pub use ha::{HaMetrics, MemberLabel};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use shard::actor::ScrapeObserver;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime};

/// Prometheus client defaults: 5 ms to 10 s.
const DEFAULT_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabel {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SuccessLabel {
    pub success: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TypeLabel {
    pub r#type: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub freshness: Histogram,
    pub last_request: Family<NodeLabel, Gauge<f64, AtomicU64>>,
    pub request_duration: Family<NodeLabel, Histogram, fn() -> Histogram>,
    pub requests: Family<SuccessLabel, Counter>,
    pub tick_duration: Histogram,
    pub storage_points: Family<TypeLabel, Gauge>,
    /// Ours: kubelet series dropped as malformed or invalid, per node.
    pub dropped_series: Family<NodeLabel, Counter>,
    /// Ours: scrapes not sent for want of a slot under `--kubelet-max-concurrency`.
    pub scrapes_overloaded: Counter,
    /// Ours: the replica set (`ha_metrics_server_*`).
    pub ha: HaMetrics,
}

fn default_histogram() -> Histogram {
    Histogram::new(DEFAULT_BUCKETS)
}

/// Default buckets plus some around the resolution, as metrics-server adds them.
fn tick_buckets(resolution: Duration) -> Vec<f64> {
    let r = resolution.as_secs_f64();
    let mut b: Vec<f64> = DEFAULT_BUCKETS
        .iter()
        .copied()
        .chain([r * 5.0 / 6.0, r, r * 1.5, r * 2.0])
        .collect();
    b.sort_by(f64::total_cmp);
    b.dedup();
    b
}

impl Metrics {
    pub fn new(resolution: Duration) -> Metrics {
        let mut registry = Registry::default();
        let freshness = Histogram::new(exponential_buckets(1.0, 1.364, 20));
        let last_request = Family::default();
        let request_duration = Family::new_with_constructor(default_histogram as fn() -> Histogram);
        let requests = Family::default();
        let tick_duration = Histogram::new(tick_buckets(resolution));
        let storage_points = Family::default();
        let dropped_series = Family::default();
        let scrapes_overloaded = Counter::default();
        registry.register(
            "metrics_server_api_metric_freshness_seconds",
            "[ALPHA] Freshness of metrics exported",
            freshness.clone(),
        );
        registry.register(
            "metrics_server_kubelet_last_request_time_seconds",
            "[ALPHA] Time of last request performed to kubelet API.",
            last_request.clone(),
        );
        registry.register(
            "metrics_server_kubelet_request_duration_seconds",
            "[ALPHA] Duration of requests to kubelet API in seconds",
            request_duration.clone(),
        );
        registry.register(
            "metrics_server_kubelet_request",
            "[ALPHA] Number of requests sent to kubelet API",
            requests.clone(),
        );
        registry.register(
            "metrics_server_manager_tick_duration_seconds",
            "[ALPHA] The total time spent collecting and storing metrics in seconds.",
            tick_duration.clone(),
        );
        registry.register(
            "metrics_server_storage_points",
            "[ALPHA] Number of metrics points stored.",
            storage_points.clone(),
        );
        registry.register(
            "ha_metrics_server_kubelet_dropped_series",
            "Kubelet series dropped as malformed or invalid; the rest of the node's data is kept.",
            dropped_series.clone(),
        );
        registry.register(
            "ha_metrics_server_kubelet_scrapes_overloaded",
            "Scrapes not sent because no slot under --kubelet-max-concurrency freed up within half a resolution.",
            scrapes_overloaded.clone(),
        );
        let ha = HaMetrics::register(&mut registry);
        Metrics {
            ha,
            registry,
            freshness,
            last_request,
            request_duration,
            requests,
            tick_duration,
            storage_points,
            dropped_series,
            scrapes_overloaded,
        }
    }

    /// The text exposition of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

impl ScrapeObserver for Metrics {
    fn kubelet_request(&self, node: &str, success: bool, took: Duration, at: SystemTime) {
        let label = NodeLabel { node: node.to_string() };
        let secs = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.last_request.get_or_create(&label).set(secs);
        self.request_duration.get_or_create(&label).observe(took.as_secs_f64());
        self.requests
            .get_or_create(&SuccessLabel {
                success: success.to_string(),
            })
            .inc();
    }

    fn tick(&self, took: Duration) {
        self.tick_duration.observe(took.as_secs_f64());
    }

    fn node_removed(&self, node: &str) {
        let label = NodeLabel { node: node.to_string() };
        self.last_request.remove(&label);
        self.request_duration.remove(&label);
        self.dropped_series.remove(&label);
    }

    fn dropped_series(&self, node: &str, count: u64) {
        self.dropped_series
            .get_or_create(&NodeLabel { node: node.to_string() })
            .inc_by(count);
    }

    fn scrape_overloaded(&self) {
        self.scrapes_overloaded.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn six_metrics_server_families_and_per_node_series_expire() {
        let m = Metrics::new(Duration::from_secs(15));
        m.kubelet_request("node-1", true, Duration::from_millis(20), SystemTime::now());
        m.storage_points
            .get_or_create(&TypeLabel { r#type: "node".into() })
            .set(1);
        let text = m.encode();
        let families: std::collections::BTreeSet<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            families.iter().filter(|f| f.starts_with("metrics_server_")).count(),
            6,
            "{families:?}"
        );
        assert!(text.contains("metrics_server_kubelet_request_total{success=\"true\"} 1"));
        assert!(text.contains("node=\"node-1\""));
        assert!(text.contains("metrics_server_storage_points{type=\"node\"} 1"));
        m.node_removed("node-1");
        assert!(!m.encode().contains("node=\"node-1\""));
    }

    #[test]
    fn tick_buckets_include_the_resolution() {
        let b = tick_buckets(Duration::from_secs(15));
        for v in [12.5, 15.0, 22.5, 30.0] {
            assert!(b.contains(&v));
        }
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }
}
