//! `kubesim`: a simulated Kubernetes cluster for tests, demos and benchmarks. Starts a fake
//! kube-apiserver (with an aggregation proxy for metrics.k8s.io) and one fake kubelet per node,
//! writes kubeconfigs and certificates into a directory, and runs until interrupted.

use anyhow::Context;
use clap::{Parser, Subcommand};
use kubesim::cluster::{Cluster, ClusterConfig, DEFAULT_KUBELET_PORT, DEFAULT_KUBELETS_PER_PROCESS};
use kubesim::scenario::{Scenario, parse_duration};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "kubesim", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Internal: host kubelets for a parent kubesim (reads requests on stdin).
    KubeletWorker {
        /// The parent's cluster directory (CA and token).
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Number of nodes (one fake kubelet each).
    #[arg(long, default_value_t = 3)]
    nodes: u32,
    /// Pods per node.
    #[arg(long, default_value_t = 5)]
    pods_per_node: u32,
    /// Seed for every simulated value.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for kubeconfigs and certificates (default: a new temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address of a metrics API replica behind the aggregation proxy (repeatable).
    #[arg(long = "replica", value_name = "HOST:PORT")]
    replicas: Vec<String>,
    /// The apiserver's listen address.
    #[arg(long, default_value = "127.0.0.1:0")]
    api_addr: SocketAddr,
    /// Serve the apiserver over HTTPS (bearer tokens required).
    #[arg(long)]
    https: bool,
    /// The kubelets' port.
    #[arg(long, default_value_t = DEFAULT_KUBELET_PORT)]
    kubelet_port: u16,
    /// Second octet of kubelet addresses (127.<octet>.x.y); default: a free block.
    #[arg(long)]
    ip_octet: Option<u8>,
    /// Kubelets per process; more nodes than this start kubelet worker processes.
    #[arg(long, default_value_t = DEFAULT_KUBELETS_PER_PROCESS)]
    kubelets_per_process: u32,
    /// A YAML scenario: cluster shape and a timeline of actions.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Stop after this long (e.g. `90s`); default: run until interrupted.
    #[arg(long)]
    duration: Option<String>,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, default_value = "info")]
    log: String,
    /// The aggregation proxy's readiness probe period (a `readinessProbe`'s `periodSeconds`:
    /// the manifests use 10s; 1s lets tests see a replica go unready sooner).
    #[arg(long, default_value = "1s")]
    readiness_period: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.run.log).context("--log")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Some(Command::KubeletWorker { dir }) => kubesim::kubelet::worker::run_worker(&dir).await,
        None => run(cli.run).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let scenario = match &args.scenario {
        Some(path) => Some(Scenario::parse(
            &std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        )?),
        None => None,
    };
    let duration = args.duration.as_deref().map(parse_duration).transpose()?;
    let config = ClusterConfig {
        nodes: scenario.as_ref().and_then(|s| s.nodes).unwrap_or(args.nodes),
        pods_per_node: scenario
            .as_ref()
            .and_then(|s| s.pods_per_node)
            .unwrap_or(args.pods_per_node),
        seed: scenario.as_ref().and_then(|s| s.seed).unwrap_or(args.seed),
        dir: args.dir,
        api_addr: args.api_addr,
        https: args.https,
        kubelet_port: args.kubelet_port,
        ip_octet: args.ip_octet,
        kubelets_per_process: args.kubelets_per_process,
        kubesim_bin: Some(std::env::current_exe()?),
        replicas: args.replicas,
        probe: kubesim::apiserver::proxy::ProbeConfig {
            period: parse_duration(&args.readiness_period).context("--readiness-period")?,
            ..kubesim::apiserver::proxy::DEFAULT_PROBE
        },
        ..Default::default()
    };
    let cluster = Cluster::start(config).await?;
    kubesim::trim_heap();
    print_banner(&cluster);
    if let Some(scenario) = scenario {
        let c = cluster.clone();
        tokio::spawn(async move { scenario.play(&c).await });
    }
    wait(duration).await;
    cluster.shutdown();
    Ok(())
}

fn print_banner(cluster: &Cluster) {
    let paths = cluster.paths();
    println!("kubesim running");
    println!("  api:        {}", cluster.api_url());
    println!("  dir:        {}", paths.dir.display());
    println!("  kubeconfig: {}", paths.kubeconfig().display());
    println!(
        "  metrics-server kubeconfig: {}",
        paths.metrics_server_kubeconfig().display()
    );
    println!("  admin API:  {}/kubesim/v1/cluster", cluster.api_url());
    println!("try: kubectl --kubeconfig {} get nodes", paths.kubeconfig().display());
}

async fn wait(duration: Option<std::time::Duration>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    let timeout = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = timeout => {}
    }
}
