//! `demo`: a simulated cluster (kubesim, in this process) with three `ha-metrics-server`
//! replicas (Raft, sharded scraping, fan-out) behind its aggregation proxy, for trying real
//! kubectl against, and killing replicas. Runs until Ctrl-C.

use clap::Parser;
use kubesim::cluster::{Cluster, ClusterConfig};
use kubesim::launch::{PeerArgs, ReplicaArgs, peer_list};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(name = "demo", about)]
struct Args {
    #[arg(long, default_value_t = 20)]
    nodes: u32,
    #[arg(long, default_value_t = 15)]
    pods_per_node: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the kubeconfig and certificates.
    #[arg(long, default_value = "/tmp/ha-metrics-server-demo")]
    dir: PathBuf,
    /// The first replica's Metrics API port; replica i uses port + i, and port + 100 + i for
    /// its peer channel.
    #[arg(long, default_value_t = 18443)]
    port: u16,
    /// Replicas to run (1 = no peers).
    #[arg(long, default_value_t = 3)]
    replicas: u16,
    /// The server's metric resolution (short, so the demo has data quickly).
    #[arg(long, default_value = "5s")]
    metric_resolution: String,
    /// The server binary (default: next to this one).
    #[arg(long)]
    server: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("warn").init();
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.dir);
    let replicas: Vec<String> = (0..args.replicas)
        .map(|i| format!("127.0.0.1:{}", args.port + i))
        .collect();
    let config = ClusterConfig {
        nodes: args.nodes,
        pods_per_node: args.pods_per_node,
        seed: args.seed,
        dir: Some(args.dir.clone()),
        replicas: replicas.clone(),
        ..Default::default()
    };
    let cluster = Cluster::start(config).await?;
    let server = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("exe")
            .with_file_name("ha-metrics-server")
    });
    let mut children = Vec::new();
    for i in 0..args.replicas {
        children.push(start_replica(&args, &cluster, &server, i)?);
    }
    let paths = cluster.paths();
    let kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    println!(
        "kubesim: {} nodes, {} pods; ha-metrics-server replicas on {}",
        args.nodes,
        args.nodes * args.pods_per_node,
        replicas.join(", ")
    );
    println!("\n  export KUBECONFIG={}", paths.kubeconfig().display());
    for cmd in [
        "top node",
        "top pod -A",
        "get podmetrics -A",
        "top pod -n team-1 -l tier=frontend --containers",
    ] {
        println!("  {kubectl} {cmd}");
    }
    if args.replicas > 1 {
        let dir = args.dir.display();
        println!(
            "\n  {} status --server=127.0.0.1:{} --peer-cert-file={dir}/peer.crt --peer-key-file={dir}/peer.key --peer-ca-file={dir}/peer-ca.crt",
            server.display(),
            args.port + 100
        );
        println!(
            "  kill -9 any replica (pids: {}) and keep running kubectl",
            pids(&children)
        );
        println!("  replica logs: {}/replica-*.log", args.dir.display());
    }
    println!(
        "\nmetrics appear after two scrapes ({} each); Ctrl-C stops everything.",
        args.metric_resolution
    );
    let any_exit = futures::future::select_all(children.iter_mut().map(|c| Box::pin(c.wait())));
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        (status, _, _) = any_exit, if args.replicas == 1 => println!("the server exited: {status:?}"),
    }
    for child in &mut children {
        if let Some(pid) = child.id() {
            // SIGTERM first: the server drains in-flight requests.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
        }
    }
    cluster.shutdown();
    Ok(())
}

fn pids(children: &[tokio::process::Child]) -> String {
    let pids: Vec<String> = children.iter().filter_map(|c| c.id()).map(|p| p.to_string()).collect();
    pids.join(" ")
}

/// The demo's `--kubelet-request-timeout`: generous, the demo machine may be busy building.
const DEMO_KUBELET_TIMEOUT: Duration = Duration::from_secs(4);

/// Starts replica `i`; with more than one replica it gets peers, a peer certificate from the
/// cluster's peer CA and a data dir.
fn start_replica(args: &Args, cluster: &Cluster, server: &PathBuf, i: u16) -> anyhow::Result<tokio::process::Child> {
    let peer = (args.replicas > 1).then(|| PeerArgs {
        peers: peer_list((0..args.replicas).map(|j| (format!("demo-{j}"), args.port + 100 + j))),
        name: format!("demo-{i}"),
        peer_port: args.port + 100 + i,
        data_dir: args.dir.join(format!("data-{i}")),
    });
    let launch = ReplicaArgs {
        cluster: cluster.paths().clone(),
        port: args.port + i,
        cert_dir: args.dir.join(format!("server-certs-{i}")),
        resolution: args.metric_resolution.clone(),
        kubelet_timeout: Some(DEMO_KUBELET_TIMEOUT),
        peer,
    };
    let mut command = tokio::process::Command::new(server);
    command
        .args(launch.args())
        .stderr(std::fs::File::create(args.dir.join(format!("replica-{i}.log")))?)
        .kill_on_drop(true);
    command.spawn().map_err(|e| {
        anyhow::anyhow!(
            "starting {} (build it with `cargo build --release --workspace --bins`): {e}",
            server.display()
        )
    })
}
