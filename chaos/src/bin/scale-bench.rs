//! `scale-bench`: the cost of an `ha-metrics-server` replica set against a large simulated
//! cluster under the consumers' load. Starts `kubesim` and the replicas as child processes,
//! applies HPA-like and `kubectl top`-like load through the aggregation proxy, and reports per
//! replica and in total CPU (mCPU from `/proc`), steady and peak RSS, cost per node, kubelet
//! requests per interval, fan-out timing and LIST latency percentiles; kubesim's own cost is
//! measured apart and excluded. `--suite design` runs the scenarios of BENCHMARKS.md's targets one after another
//! and prints BENCHMARKS.md rows.

use chaos::bench::{self, Row, Scenario};
use clap::Parser;
use kubesim::scenario::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "scale-bench", about)]
struct Args {
    #[arg(long, default_value_t = 5000)]
    nodes: u32,
    #[arg(long, default_value_t = 30)]
    pods_per_node: u32,
    /// Replica counts, each its own run back to back under the same load (`1,3` is the A/B
    /// of the HA tax: each later count's CPU and RSS are also given as a multiple of the first).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    replicas: Vec<u16>,
    /// The servers' --metric-resolution.
    #[arg(long, default_value = "15s")]
    resolution: String,
    /// Measured intervals after the warm-up.
    #[arg(long, default_value_t = 4)]
    intervals: u32,
    /// Sequential requests per latency measurement (the all-namespace LIST gets a tenth).
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// The HPA controller's LISTs (a namespace LIST with a label selector per HPA and resource
    /// metric, each sync period).
    #[arg(long, default_value_t = 0)]
    hpas: usize,
    #[arg(long, default_value = "15s")]
    hpa_period: String,
    /// The HPA controller's workers taking the LISTs in due order
    /// (`--concurrent-horizontal-pod-autoscaler-syncs`, 5 in kube-controller-manager).
    #[arg(long, default_value_t = 5)]
    hpa_workers: usize,
    /// `kubectl top pods -A`-like period (e.g. `2s`); none if not given.
    #[arg(long)]
    top_every: Option<String>,
    /// VPA-recommender-like all-namespace LIST period (the VPA's is `1m`); none if not given.
    #[arg(long)]
    vpa_every: Option<String>,
    #[arg(long, default_value_t = 18500)]
    port: u16,
    /// Run the scenarios behind BENCHMARKS.md's targets (`design`) instead of the one given by the flags.
    #[arg(long)]
    suite: Option<String>,
    /// Directory of the `kubesim` and `ha-metrics-server` binaries (default: this one's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

fn design_suite(port: u16) -> Vec<Scenario> {
    let small = |replicas| Scenario {
        nodes: 100,
        pods_per_node: 70,
        replicas,
        resolution: "15s".into(),
        hpas: 100,
        hpa_period: Duration::from_secs(15),
        hpa_workers: 5,
        top_period: Duration::from_secs(2),
        vpa_period: Duration::ZERO,
        intervals: 4,
        requests: 200,
        port,
    };
    vec![
        small(1),
        small(3),
        Scenario {
            nodes: 5000,
            pods_per_node: 30,
            replicas: 3,
            hpas: 0,
            top_period: Duration::ZERO,
            requests: 100,
            ..small(3)
        },
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bins = args
        .bin_dir
        .clone()
        .unwrap_or_else(|| std::env::current_exe().unwrap().parent().unwrap().to_path_buf());
    let scenarios = match args.suite.as_deref() {
        Some("design") => design_suite(args.port),
        Some(other) => anyhow::bail!("unknown suite {other:?} (known: design)"),
        None => {
            let hpa_period = parse_duration(&args.hpa_period)?;
            let top_period = optional_duration(args.top_every.as_deref())?;
            let vpa_period = optional_duration(args.vpa_every.as_deref())?;
            args.replicas
                .iter()
                .map(|&replicas| Scenario {
                    nodes: args.nodes,
                    pods_per_node: args.pods_per_node,
                    replicas,
                    resolution: args.resolution.clone(),
                    hpas: args.hpas,
                    hpa_period,
                    hpa_workers: args.hpa_workers,
                    top_period,
                    vpa_period,
                    intervals: args.intervals,
                    requests: args.requests,
                    port: args.port,
                })
                .collect()
        }
    };
    let mut rows = Vec::new();
    for s in &scenarios {
        eprintln!(
            "== {} nodes x {} pods, {} replica(s)",
            s.nodes, s.pods_per_node, s.replicas
        );
        let row = bench::run(&bins, s).await?;
        print!("{}", human(&row));
        rows.push(row);
    }
    println!("\n{}", markdown_header());
    for row in &rows {
        println!("{}", markdown(row));
    }
    if let [first, rest @ ..] = &rows[..] {
        for row in rest {
            println!(
                "{} replica(s) against {}: CPU {:.2}x, RSS steady {:.2}x",
                row.scenario.replicas,
                first.scenario.replicas,
                row.total_mcpu() / first.total_mcpu(),
                row.total_rss_mean() as f64 / first.total_rss_mean() as f64
            );
        }
    }
    Ok(())
}

/// A period flag: zero (no such client) when not given.
fn optional_duration(flag: Option<&str>) -> anyhow::Result<Duration> {
    Ok(flag.map(parse_duration).transpose()?.unwrap_or_default())
}

const MIB: f64 = 1048576.0;

fn human(r: &Row) -> String {
    let s = &r.scenario;
    let mut out = format!(
        "nodes={} pods={} served when the load began={} replicas={} resolution={} hpas={} top every {:?} (load avg {})\n",
        s.nodes,
        s.nodes * s.pods_per_node,
        r.served,
        s.replicas,
        s.resolution,
        s.hpas,
        s.top_period,
        r.load_average
    );
    for (i, c) in r.replicas.iter().enumerate() {
        out += &format!(
            "  replica {i}: {:.1} mCPU, RSS steady {:.0} MiB, peak {:.0} MiB, after queries {:.0} MiB\n",
            c.mcpu,
            c.rss_mean as f64 / MIB,
            c.rss_peak as f64 / MIB,
            r.rss_after_queries.get(i).copied().unwrap_or(0) as f64 / MIB
        );
    }
    let n = s.nodes as f64;
    out += &format!(
        "  total: {:.1} mCPU ({:.4} mCPU/node), RSS steady {:.0} MiB ({:.4} MiB/node), peak {:.0} MiB\n",
        r.total_mcpu(),
        r.total_mcpu() / n,
        r.total_rss_mean() as f64 / MIB,
        r.total_rss_mean() as f64 / MIB / n,
        r.total_rss_peak() as f64 / MIB
    );
    out += &format!(
        "  kubelet requests per interval: {:.0} (nodes {})\n",
        r.scrapes_per_interval, s.nodes
    );
    out += &format!(
        "  load through the proxy: HPA p50/p99 {:.1}/{:.1} ms ({} errors), top p50/p99 {:.0}/{:.0} ms ({} errors)\n",
        r.hpa_load.0 * 1e3,
        r.hpa_load.1 * 1e3,
        r.hpa_load.2,
        r.top_load.0 * 1e3,
        r.top_load.1 * 1e3,
        r.top_load.2
    );
    out += &format!(
        "  HPA LISTs: {:.0}/s done of {:.0}/s due ({} workers), last one {:.1} s behind schedule\n",
        r.hpa_rate.0,
        s.hpas as f64 / s.hpa_period.as_secs_f64(),
        s.hpa_workers,
        r.hpa_rate.1.as_secs_f64()
    );
    out += &format!(
        "  VPA-like all-namespace LIST every {:?}: p50/p99 {:.0}/{:.0} ms ({} errors); probes p50/p99 {:.1}/{:.1} ms, {} failed (1 s timeout)\n",
        s.vpa_period,
        r.vpa_load.0 * 1e3,
        r.vpa_load.1 * 1e3,
        r.vpa_load.2,
        r.probes.0 * 1e3,
        r.probes.1 * 1e3,
        r.probes.2
    );
    out += &format!(
        "  fan-out: {:.0} fan-outs, mean {:.1} ms, {} partial\n",
        r.fanout.1,
        r.fanout.0 * 1e3,
        r.fanout.2
    );
    out += &format!(
        "  namespace LIST + selector ({} pods) p50/p99 {:.1}/{:.1} ms; all-namespace LIST ({} pods) p50/p99 {:.0}/{:.0} ms\n",
        r.ns_list.2,
        r.ns_list.0 * 1e3,
        r.ns_list.1 * 1e3,
        r.all_list.2,
        r.all_list.0 * 1e3,
        r.all_list.1 * 1e3
    );
    for (format, c) in [("JSON", &r.all_list_json), ("protobuf", &r.all_list_protobuf)] {
        out += &format!(
            "  all-namespace LIST as {format}: p50/p99 {:.0}/{:.0} ms, server CPU {:.0} ms per LIST, {:.1} MB\n",
            c.p50 * 1e3,
            c.p99 * 1e3,
            c.cpu_ms_per_list,
            c.bytes as f64 / 1e6
        );
    }
    out += &format!(
        "  kubesim (excluded): {:.0} mCPU, RSS {:.0} MiB\n",
        r.kubesim.mcpu,
        r.kubesim.rss_mean as f64 / MIB
    );
    out
}

fn markdown_header() -> String {
    "| scenario | replicas | load | CPU per replica | CPU total (per node) | RSS steady per replica | RSS total steady (per node) / peak | kubelet requests per interval | fan-outs, mean | ns LIST + selector p50 / p99 | all-ns LIST p50 / p99 | kubesim (excluded) |\n|---|---|---|---|---|---|---|---|---|---|---|---|".into()
}

fn markdown(r: &Row) -> String {
    let s = &r.scenario;
    let n = s.nodes as f64;
    let list = |v: Vec<String>| v.join(" / ");
    let load = match (s.hpas, s.top_period.is_zero()) {
        (0, true) => "none".to_string(),
        (h, true) => format!("{h} HPAs"),
        (h, false) => format!("{h} HPAs + top -A every {}s", s.top_period.as_secs()),
    };
    let load = match s.vpa_period.as_secs() {
        0 => load,
        vpa => format!("{load} + VPA every {vpa}s"),
    };
    format!(
        "| {} x {} ({} pods), {} | {} | {load} | {} mCPU | {:.1} mCPU ({:.3}) | {} MiB | {:.0} MiB ({:.3}) / {:.0} MiB | {:.0} | {:.0}, {:.1} ms | {:.1} / {:.1} ms ({} pods) | {:.0} / {:.0} ms ({} pods) | {:.0} mCPU, {:.0} MiB |",
        s.nodes,
        s.pods_per_node,
        s.nodes * s.pods_per_node,
        s.resolution,
        s.replicas,
        list(r.replicas.iter().map(|c| format!("{:.1}", c.mcpu)).collect()),
        r.total_mcpu(),
        r.total_mcpu() / n,
        list(
            r.replicas
                .iter()
                .map(|c| format!("{:.0}", c.rss_mean as f64 / MIB))
                .collect()
        ),
        r.total_rss_mean() as f64 / MIB,
        r.total_rss_mean() as f64 / MIB / n,
        r.total_rss_peak() as f64 / MIB,
        r.scrapes_per_interval,
        r.fanout.1,
        r.fanout.0 * 1e3,
        r.ns_list.0 * 1e3,
        r.ns_list.1 * 1e3,
        r.ns_list.2,
        r.all_list.0 * 1e3,
        r.all_list.1 * 1e3,
        r.all_list.2,
        r.kubesim.mcpu,
        r.kubesim.rss_mean as f64 / MIB
    )
}
