//! Measurements of a benchmark window: CPU and RSS per process from `/proc` (sampled every
//! second for steady and peak RSS), kubelet requests at kubesim, self-metrics of the replicas,
//! and latency percentiles.

use kubesim::procstat::{TICKS_PER_SECOND, Usage, tree_usage};
use std::time::{Duration, Instant};

/// CPU (mCPU) and memory (bytes) of one process over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub mcpu: f64,
    pub rss_mean: u64,
    pub rss_peak: u64,
}

/// Samples `pids` every second for `length`; returns each one's cost.
pub async fn costs(pids: &[u32], length: Duration) -> Vec<Cost> {
    let started = Instant::now();
    let first: Vec<Usage> = pids.iter().map(|&p| tree_usage(p)).collect();
    let mut rss: Vec<Vec<u64>> = vec![Vec::new(); pids.len()];
    while started.elapsed() < length {
        tokio::time::sleep(Duration::from_secs(1).min(length.saturating_sub(started.elapsed()))).await;
        for (i, &p) in pids.iter().enumerate() {
            rss[i].push(tree_usage(p).rss_bytes);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    pids.iter()
        .enumerate()
        .map(|(i, &p)| {
            let last = tree_usage(p);
            let samples = &rss[i];
            Cost {
                mcpu: last.cpu_ticks.saturating_sub(first[i].cpu_ticks) as f64 / TICKS_PER_SECOND / secs * 1000.0,
                rss_mean: samples.iter().sum::<u64>() / samples.len().max(1) as u64,
                rss_peak: samples.iter().copied().max().unwrap_or(0).max(hwm(p)),
            }
        })
        .collect()
}

/// `VmHWM` (peak resident set since start) of a process, in bytes.
pub fn hwm(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Total authorised scrapes over all kubelets (kubesim's admin API).
pub async fn scrapes(http: &super::load::Http, api: &str) -> anyhow::Result<u64> {
    let body = http.get_plain(&format!("{api}/kubesim/v1/kubelets")).await?;
    let stats: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(stats
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v["scrapes"].as_u64()).sum()))
}

/// Sum over replicas of a self-metric sample (exact name with labels).
pub async fn metric_sum(http: &super::load::Http, ports: &[u16], name: &str) -> f64 {
    let mut sum = 0.0;
    for &port in ports {
        if let Ok(body) = http.get_replica(port, "/metrics").await {
            let text = String::from_utf8_lossy(&body);
            sum += text
                .lines()
                .find(|l| l.strip_prefix(name).is_some_and(|r| r.starts_with(' ')))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .unwrap_or(0.0);
        }
    }
    sum
}

/// p50 and p99 of `times` (seconds).
pub fn percentiles(mut times: Vec<f64>) -> (f64, f64) {
    if times.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times[((times.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(times.len() - 1)]
    };
    (pct(0.50), pct(0.99))
}
