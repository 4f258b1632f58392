//! `chaos`: runs the chaos runner once — kubesim in this process, `ha-metrics-server` replicas as
//! child processes, consumer-like clients, a seeded fault schedule, invariants — and writes
//! `report.json`, `summary.txt` and `timeline.svg`. Exits 0 only if every invariant held and the
//! replica set recovered. Every run prints its seed and the command that repeats it.

use chaos::runner::{RunConfig, partition};
use chaos::scenario::parse_duration;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "chaos", about)]
struct Args {
    /// Seed of the fault schedule and the cluster (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Repeat the run of this seed (same as --seed).
    #[arg(long)]
    reproduce: Option<u64>,
    /// Length of the fault phase (warm-up and recovery come on top).
    #[arg(long, default_value = "150s")]
    duration: String,
    #[arg(long, default_value_t = 20)]
    nodes: u32,
    #[arg(long, default_value_t = 10)]
    pods_per_node: u32,
    /// Replicas in --peers (one more is started for scale-out).
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// The replicas' --metric-resolution; client periods scale with it.
    #[arg(long, default_value = "2s")]
    resolution: String,
    /// HPA-like clients.
    #[arg(long, default_value_t = 20)]
    hpas: usize,
    #[arg(long, default_value_t = 12)]
    shards: u32,
    /// Resolutions without faults after each fault.
    #[arg(long, default_value_t = 4)]
    settle: i64,
    /// Do not try network partitions (they need root, iptables and cgroup2).
    #[arg(long)]
    no_partitions: bool,
    /// Only these fault kinds (comma-separated names as in the report, e.g.
    /// `kill-leader,freeze-follower`); all by default.
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// Where the report goes (default target/chaos/<seed>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    #[arg(long, default_value = "info,chaos::cluster=warn,chaos::apiserver=warn")]
    log: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !args.no_partitions {
        partition::reexec_in_netns();
    }
    tracing_subscriber::fmt()
        .with_env_filter(args.log.as_str())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let seed = args.reproduce.or(args.seed).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
    });
    let exe = std::env::current_exe()?;
    let config = RunConfig {
        seed,
        duration: parse_duration(&args.duration)?,
        nodes: args.nodes,
        pods_per_node: args.pods_per_node,
        replicas: args.replicas,
        resolution: parse_duration(&args.resolution)?,
        hpas: args.hpas,
        shards: args.shards,
        settle: args.settle,
        partitions: !args.no_partitions,
        only: args.faults,
        out_dir: args
            .out
            .unwrap_or_else(|| PathBuf::from(format!("target/chaos/{seed}"))),
        server_bin: args.server.unwrap_or_else(|| exe.with_file_name("ha-metrics-server")),
    };
    println!("chaos: seed {seed}; reproduce with: {}", config.reproduce());
    let report = chaos::runner::run(config.clone()).await?;
    print!("{}", chaos::runner::report::summary(&report));
    println!(
        "report: {}/{{report.json,summary.txt,timeline.svg}}",
        config.out_dir.display()
    );
    Ok(report.passed)
}
