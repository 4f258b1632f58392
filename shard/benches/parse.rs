//! Throughput of `shard::parse::decode` on kubelet `/metrics/resource` bodies, side by side
//! with the `prometheus-parse` crate on the same bytes in the same run.
//!
//! ```sh
//! cargo bench -p shard --bench parse
//! ```
//!
//! The bodies are generated here in the kubelet's exact format (families sorted by name,
//! series by label text, HELP and TYPE lines, pod and swap families, Go's number format) for
//! 30 and 110 pods of 2 containers. Results go to `BENCHMARKS.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shard::parse::{Limits, decode};
use std::fmt::Write as _;
use std::hint::black_box;
use std::io::BufRead as _;
use std::time::Duration;

/// The request time passed to `decode` (every generated sample has its own timestamp).
const SENT: i64 = 1_633_253_800_000_000_000;
const NOW_MS: u64 = 1_633_253_812_125;

const NAMESPACES: &[&str] = &["default", "kube-system", "monitoring", "payments", "web-frontend"];
const APPS: &[&str] = &["api", "checkout-service", "coredns", "nginx-ingress", "redis", "worker"];

struct Container {
    /// `container="..",namespace="..",pod=".."`, the kubelet's label order.
    labels: String,
    pod_labels: String,
    cpu_seconds: f64,
    memory: f64,
    start_seconds: f64,
}

/// A deterministic pseudo-random number (splitmix64), so every run measures the same bytes.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn containers(pods: usize, per_pod: usize) -> Vec<Container> {
    let mut out = Vec::new();
    for p in 0..pods {
        let r = mix(p as u64);
        let ns = NAMESPACES[r as usize % NAMESPACES.len()];
        let app = APPS[(r >> 8) as usize % APPS.len()];
        let pod = format!("{app}-{:010x}-{:05x}", r >> 24, mix(r) & 0xfffff);
        for c in 0..per_pod {
            let name = if c == 0 { app.to_owned() } else { format!("sidecar-{c}") };
            let r = mix(r ^ c as u64);
            out.push(Container {
                labels: format!("container=\"{name}\",namespace=\"{ns}\",pod=\"{pod}\""),
                pod_labels: format!("namespace=\"{ns}\",pod=\"{pod}\""),
                cpu_seconds: (r % 10_000_000) as f64 / 1_000.0 + 0.000123456,
                memory: (((r >> 20) % 500_000) * 4096) as f64,
                start_seconds: 1_633_250_000.0 + (r % 3_600_000) as f64 / 1_000.0,
            });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    out
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`.
fn go_float(v: f64) -> String {
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    if (-4..6).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

fn family(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn line(out: &mut String, name: &str, labels: &str, value: f64, ms: Option<u64>) {
    let braces = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = write!(out, "{name}{braces} {}", go_float(value));
    if let Some(ms) = ms {
        let _ = write!(out, " {ms}");
    }
    out.push('\n');
}

/// The body a kubelet with `pods` pods of `per_pod` containers serves.
fn kubelet_body(pods: usize, per_pod: usize) -> String {
    let cs = containers(pods, per_pod);
    let mut out = String::new();
    type Value = fn(&Container) -> f64;
    let container_families: [(&str, &str, &str, Value, bool); 4] = [
        (
            "container_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
            "counter",
            |c| c.cpu_seconds,
            true,
        ),
        (
            "container_memory_working_set_bytes",
            "[STABLE] Current working set of the container in bytes",
            "gauge",
            |c| c.memory,
            true,
        ),
        (
            "container_start_time_seconds",
            "[STABLE] Start time of the container since unix epoch in seconds",
            "gauge",
            |c| c.start_seconds,
            false,
        ),
        (
            "container_swap_usage_bytes",
            "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems",
            "gauge",
            |_| 0.0,
            true,
        ),
    ];
    for (name, help, kind, value, stamped) in container_families {
        family(&mut out, name, help, kind);
        for c in &cs {
            line(&mut out, name, &c.labels, value(c), stamped.then_some(NOW_MS));
        }
    }
    node_and_pod_families(&mut out, &cs, per_pod);
    out
}

/// A family's name, HELP text, TYPE and value of a container or pod.
type Family = (&'static str, &'static str, &'static str, fn(&Container) -> f64);

fn node_and_pod_families(out: &mut String, cs: &[Container], per_pod: usize) {
    family(
        out,
        "node_cpu_usage_seconds_total",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    );
    line(
        out,
        "node_cpu_usage_seconds_total",
        "",
        357_354.910_23,
        Some(NOW_MS - 2405),
    );
    family(
        out,
        "node_memory_working_set_bytes",
        "[STABLE] Current working set of the node in bytes",
        "gauge",
    );
    line(
        out,
        "node_memory_working_set_bytes",
        "",
        1.137475584e9,
        Some(NOW_MS - 2405),
    );
    family(
        out,
        "node_swap_usage_bytes",
        "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems",
        "gauge",
    );
    line(out, "node_swap_usage_bytes", "", 0.0, Some(NOW_MS - 2405));
    let mut pods: Vec<&Container> = cs.iter().step_by(per_pod.max(1)).collect();
    pods.sort_by(|a, b| a.pod_labels.cmp(&b.pod_labels));
    let pod_families: [Family; 3] = [
        (
            "pod_cpu_usage_seconds_total",
            "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
            |c| c.cpu_seconds * 1.5,
        ),
        (
            "pod_memory_working_set_bytes",
            "[STABLE] Current working set of the pod in bytes",
            "gauge",
            |c| c.memory * 2.0,
        ),
        (
            "pod_swap_usage_bytes",
            "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
            "gauge",
            |_| 0.0,
        ),
    ];
    for (name, help, kind, value) in pod_families {
        family(out, name, help, kind);
        for p in &pods {
            line(out, name, &p.pod_labels, value(p), Some(NOW_MS));
        }
    }
    family(
        out,
        "resource_scrape_error",
        "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    line(out, "resource_scrape_error", "", 0.0, None);
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("kubelet_parse");
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);
    for pods in [30, 110] {
        let body = kubelet_body(pods, 2);
        let bytes = body.as_bytes();
        let batch = decode(bytes, SENT, &Limits::default()).expect("decodes");
        assert_eq!((batch.pods.len(), batch.stats.malformed_lines), (pods, 0));
        assert!(batch.node.is_some());
        let theirs = prometheus_parse::Scrape::parse(std::io::Cursor::new(bytes).lines()).expect("parses");
        assert!(theirs.samples.len() > pods * 2 * 4);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let label = format!("{pods}x2 ({} KiB)", bytes.len() / 1024);
        group.bench_function(format!("shard::parse::decode/{label}"), |b| {
            b.iter(|| decode(black_box(bytes), SENT, &Limits::default()).map(|b| b.pods.len()))
        });
        group.bench_function(format!("prometheus-parse/{label}"), |b| {
            b.iter(|| {
                let lines = std::io::Cursor::new(black_box(bytes)).lines();
                prometheus_parse::Scrape::parse(lines).map(|s| s.samples.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
