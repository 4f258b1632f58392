//! `chaos`: runs the chaos runner once — kubesim in this process, `ha-metrics-server` replicas as
//! child processes, consumer-like clients, a seeded fault schedule, invariants — and writes
//! `report.json`, `summary.txt` and `timeline.svg`. Exits 0 only if every invariant held and the
//! replica set recovered. Every run prints its seed and the command that repeats it.
//!
//! `chaos campaign --seeds N --duration D` runs N scenarios one after another (seeds drawn at
//! random unless given with `--seed-list`), prints one table row per seed and exits 1 if any
//! seed failed; each failed row names its `--reproduce` command.

use chaos::runner::campaign::{self, Row};
use chaos::runner::{RunConfig, partition};
use clap::{Parser, Subcommand};
use kubesim::scenario::parse_duration;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "chaos", about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs one scenario per seed, one after another, and prints a table row per seed.
    Campaign {
        /// How many seeds (drawn at random, printed) unless --seed-list gives them.
        #[arg(long, default_value_t = 20)]
        seeds: usize,
        /// These seeds instead of random ones (comma-separated).
        #[arg(long, value_delimiter = ',')]
        seed_list: Vec<u64>,
        #[command(flatten)]
        args: Args,
    },
}

#[derive(clap::Args, Debug)]
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
    /// Where the report goes (default target/chaos/<seed>; a campaign writes <out>/<seed>/ and
    /// <out>/campaign.md).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The server binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
    #[arg(long, default_value = "info,kubesim::cluster=warn,kubesim::apiserver=warn")]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match &cli.command {
        None => &cli.args,
        Some(Command::Campaign { args, .. }) => args,
    };
    if !args.no_partitions {
        partition::reexec_in_netns();
    }
    tracing_subscriber::fmt()
        .with_env_filter(args.log.as_str())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let outcome = match cli.command {
        None => runtime.block_on(run(cli.args)),
        Some(Command::Campaign { seeds, seed_list, args }) => runtime.block_on(run_campaign(args, seeds, seed_list)),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A seed from the clock, for runs and campaigns given none.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64 % 1_000_000)
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let seed = args.reproduce.or(args.seed).unwrap_or_else(clock_seed);
    let config = config(
        &args,
        seed,
        args.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("target/chaos/{seed}"))),
    )?;
    println!("chaos: seed {seed}; reproduce with: {}", config.reproduce());
    let report = chaos::runner::run(config.clone()).await?;
    print!("{}", chaos::runner::report::summary(&report));
    println!(
        "report: {}/{{report.json,summary.txt,timeline.svg}}",
        config.out_dir.display()
    );
    Ok(report.passed)
}

/// Runs one scenario per seed; prints and writes (`<out>/campaign.md`) the table as it grows.
async fn run_campaign(args: Args, seeds: usize, seed_list: Vec<u64>) -> anyhow::Result<bool> {
    let seeds: Vec<u64> = if seed_list.is_empty() {
        let first = clock_seed();
        (0..seeds as u64).map(|i| (first + i * 7919) % 1_000_000).collect()
    } else {
        seed_list
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("target/chaos/campaign"));
    std::fs::create_dir_all(&out)?;
    let seed_text: Vec<String> = seeds.iter().map(u64::to_string).collect();
    println!(
        "chaos campaign: {} seeds ({}), {} each",
        seeds.len(),
        seed_text.join(","),
        args.duration
    );
    let mut table = format!(
        "campaign of {} seeds x {}: chaos campaign --seed-list {} --duration {}

{}
",
        seeds.len(),
        args.duration,
        seed_text.join(","),
        args.duration,
        campaign::header()
    );
    println!("{}", campaign::header());
    let mut rows = Vec::new();
    for seed in seeds {
        let config = config(&args, seed, out.join(seed.to_string()))?;
        let report = chaos::runner::run(config).await?;
        let row = Row::of(&report);
        let line = campaign::line(&row);
        println!("{line}");
        let _ = std::io::stdout().flush();
        table.push_str(&line);
        table.push('\n');
        std::fs::write(out.join("campaign.md"), &table)?;
        rows.push(row);
    }
    let verdict = campaign::verdict(&rows);
    println!("{verdict}");
    table.push_str(&format!("\n{verdict}\n"));
    std::fs::write(out.join("campaign.md"), &table)?;
    Ok(rows.iter().all(|r| r.passed))
}

fn config(args: &Args, seed: u64, out_dir: PathBuf) -> anyhow::Result<RunConfig> {
    let exe = std::env::current_exe()?;
    Ok(RunConfig {
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
        only: args.faults.clone(),
        out_dir,
        server_bin: args
            .server
            .clone()
            .unwrap_or_else(|| exe.with_file_name("ha-metrics-server")),
    })
}
