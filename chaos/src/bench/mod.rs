//! The scale benchmark behind `scale-bench`: kubesim and N replicas as child processes, the
//! consumers' load (HPA-like selector LISTs, `kubectl top pods -A`-like LISTs) through the
//! aggregation proxy, then the replicas' CPU and memory from `/proc` (kubesim's apart), kubelet
//! requests per interval, the fan-out's own timing, and LIST latency percentiles straight at the
//! replicas.

pub mod load;
pub mod measure;
pub mod procs;

use measure::Cost;
use std::path::Path;
use std::time::{Duration, Instant};

/// One benchmark scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub nodes: u32,
    pub pods_per_node: u32,
    pub replicas: u16,
    pub resolution: String,
    pub hpas: usize,
    /// HPA sync period (15 s in Kubernetes).
    pub hpa_period: Duration,
    /// The HPA controller's workers (5 in Kubernetes).
    pub hpa_workers: usize,
    /// `kubectl top pods -A` period; zero for none.
    pub top_period: Duration,
    /// The VPA recommender's all-namespace LIST period (1 min in the VPA); zero for none.
    pub vpa_period: Duration,
    /// Measured intervals (after the warm-up).
    pub intervals: u32,
    /// Sequential requests per latency measurement.
    pub requests: usize,
    pub port: u16,
}

/// What one scenario measured.
#[derive(Debug, Clone)]
pub struct Row {
    pub scenario: Scenario,
    pub replicas: Vec<Cost>,
    pub kubesim: Cost,
    pub served: usize,
    pub scrapes_per_interval: f64,
    /// (p50, p99) in seconds and item counts.
    pub ns_list: (f64, f64, usize),
    pub all_list: (f64, f64, usize),
    /// The all-namespace LIST in JSON and in protobuf, each measured alone.
    pub all_list_json: load::FormatCost,
    pub all_list_protobuf: load::FormatCost,
    /// Latencies the load saw through the proxy: (p50, p99, errors).
    pub hpa_load: (f64, f64, u64),
    pub top_load: (f64, f64, u64),
    pub vpa_load: (f64, f64, u64),
    /// HPA LISTs done per second over the load, and how far behind schedule the last started.
    pub hpa_rate: (f64, Duration),
    /// Probe latencies and failures (`/readyz` and `/livez` of every replica, 1 s timeout).
    pub probes: (f64, f64, u64),
    /// Mean fan-out duration (seconds), fan-outs and partial answers during the measurement.
    pub fanout: (f64, f64, f64),
    pub rss_after_queries: Vec<u64>,
    pub load_average: String,
}

impl Row {
    pub fn total_mcpu(&self) -> f64 {
        self.replicas.iter().map(|c| c.mcpu).sum()
    }

    pub fn total_rss_mean(&self) -> u64 {
        self.replicas.iter().map(|c| c.rss_mean).sum()
    }

    pub fn total_rss_peak(&self) -> u64 {
        self.replicas.iter().map(|c| c.rss_peak).sum()
    }
}

/// Runs one scenario with the binaries in `bins`.
pub async fn run(bins: &Path, s: &Scenario) -> anyhow::Result<Row> {
    let interval = kubesim::scenario::parse_duration(&s.resolution)?;
    let mut procs = procs::start(bins, s.nodes, s.pods_per_node, s.replicas, s.port, &s.resolution).await?;
    let http = load::Http::new(&procs.dir, &procs.api)?;
    let expected = (s.nodes * s.pods_per_node) as usize;
    eprintln!(
        "cluster up at {}; waiting until the replicas serve {expected} pods",
        procs.api
    );
    let ports = procs.ports.clone();
    let pods = tokio::select! {
        pods = wait_served(&http, &ports, expected, Duration::from_secs(900)) => pods?,
        dead = procs.first_exit() => anyhow::bail!("a replica exited during the warm-up ({dead}); logs in {}", procs.dir.display()),
    };
    let served = pods["items"].as_array().map_or(0, Vec::len);
    let targets = load::hpa_targets(&pods, s.hpas);
    let hpa = load::HpaLoad {
        period: s.hpa_period,
        workers: s.hpa_workers,
    };
    let load_started = Instant::now();
    let (handles, records) = load::spawn(&http, &targets, hpa, s.top_period, s.vpa_period, &ports);
    tokio::time::sleep(interval).await;

    let (f0, c0, t0) = (
        fanout(&http, &procs.ports).await,
        measure::scrapes(&http, &procs.api).await?,
        Instant::now(),
    );
    let mut pids = procs.replica_pids();
    pids.push(procs.kubesim_pid());
    let mut costs = measure::costs(&pids, interval * s.intervals).await;
    let (f1, c1) = (
        fanout(&http, &procs.ports).await,
        measure::scrapes(&http, &procs.api).await?,
    );
    let per_interval = (c1 - c0) as f64 / (t0.elapsed().as_secs_f64() / interval.as_secs_f64());
    let load_average = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    for h in &handles {
        h.abort();
    }
    let load_time = load_started.elapsed().as_secs_f64();
    let kubesim = costs.pop().unwrap_or_default();
    let summarize = |rec: &load::Shared| {
        let r = rec.lock().expect("record lock");
        let (p50, p99) = measure::percentiles(r.times.clone());
        (p50, p99, r.errors)
    };
    let (hpa_load, top_load) = (summarize(&records.hpa), summarize(&records.top));
    let (vpa_load, probes) = (summarize(&records.vpa), summarize(&records.probes));
    let hpa_rate = {
        let r = records.hpa.lock().expect("record lock");
        ((r.times.len() as u64 + r.errors) as f64 / load_time, r.late)
    };

    // The latency target is the first HPA's, or any deployment's when there is no HPA load.
    let (ns, app) = load::hpa_targets(&pods, 1).first().cloned().unwrap_or_default();
    let (times, ns_items) = load::sequential(&http, &procs.ports, &load::selector_path(&ns, &app), s.requests).await?;
    let (n50, n99) = measure::percentiles(times);
    let (times, all_items) = load::sequential(&http, &procs.ports, load::ALL_PODS, (s.requests / 10).max(6)).await?;
    let (a50, a99) = measure::percentiles(times);
    let (pids, n) = (procs.replica_pids(), (s.requests / 10).max(6));
    let all_list_json = load::format_cost(&http, &procs.ports, &pids, load::ALL_PODS, "application/json", n).await?;
    let protobuf = "application/vnd.kubernetes.protobuf, */*";
    let all_list_protobuf = load::format_cost(&http, &procs.ports, &pids, load::ALL_PODS, protobuf, n).await?;
    let rss_after_queries = procs.replica_pids().iter().map(|&p| measure::hwm(p)).collect();
    procs.stop().await;
    let fanouts = f1.1 - f0.1;
    Ok(Row {
        scenario: s.clone(),
        replicas: costs,
        kubesim,
        served,
        scrapes_per_interval: per_interval,
        ns_list: (n50, n99, ns_items),
        all_list: (a50, a99, all_items),
        all_list_json,
        all_list_protobuf,
        hpa_load,
        top_load,
        vpa_load,
        probes,
        hpa_rate,
        fanout: (
            if fanouts > 0.0 { (f1.0 - f0.0) / fanouts } else { 0.0 },
            fanouts,
            f1.2 - f0.2,
        ),
        rss_after_queries,
        load_average: load_average.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// Fan-out seconds, fan-outs and partial answers so far, summed over the replicas.
async fn fanout(http: &load::Http, ports: &[u16]) -> (f64, f64, f64) {
    (
        measure::metric_sum(http, ports, "ha_metrics_server_fanout_duration_seconds_sum").await,
        measure::metric_sum(http, ports, "ha_metrics_server_fanout_duration_seconds_count").await,
        measure::metric_sum(http, ports, "ha_metrics_server_fanout_partial_total").await,
    )
}

/// Polls replica 0's all-namespace LIST until it has at least 99% of `expected` pods.
async fn wait_served(
    http: &load::Http,
    ports: &[u16],
    expected: usize,
    limit: Duration,
) -> anyhow::Result<serde_json::Value> {
    let started = Instant::now();
    let mut last = 0;
    while started.elapsed() < limit {
        if let Ok(body) = http.get_replica(ports[0], load::ALL_PODS).await {
            let list: serde_json::Value = serde_json::from_slice(&body)?;
            last = list["items"].as_array().map_or(0, Vec::len);
            if last * 100 >= expected * 99 {
                return Ok(list);
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    anyhow::bail!("only {last} of {expected} pods served after {limit:?}")
}
