//! `demo`: a simulated cluster (kubesim, in this process) with one `ha-metrics-server` replica
//! behind its aggregation proxy, for trying real kubectl against. Runs until Ctrl-C.

use chaos::cluster::{Cluster, ClusterConfig};
use clap::Parser;
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
    /// The server's port.
    #[arg(long, default_value_t = 18443)]
    port: u16,
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
    let replica = format!("127.0.0.1:{}", args.port);
    let config = ClusterConfig {
        nodes: args.nodes,
        pods_per_node: args.pods_per_node,
        seed: args.seed,
        dir: Some(args.dir.clone()),
        replicas: vec![replica],
        ..Default::default()
    };
    let cluster = Cluster::start(config).await?;
    let server = args.server.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("exe")
            .with_file_name("ha-metrics-server")
    });
    let paths = cluster.paths();
    let mut child = tokio::process::Command::new(&server)
        .arg(format!("--kubeconfig={}", paths.metrics_server_kubeconfig().display()))
        .arg(format!("--secure-port={}", args.port))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--cert-dir={}", args.dir.join("server-certs").display()))
        .arg(format!("--metric-resolution={}", args.metric_resolution))
        .arg("--kubelet-request-timeout=4s")
        .arg("--kubelet-preferred-address-types=InternalIP")
        .arg("--kubelet-use-node-status-port")
        .arg(format!(
            "--requestheader-client-ca-file={}",
            paths.front_proxy_ca().display()
        ))
        .arg("--requestheader-allowed-names=front-proxy-client")
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "starting {} (build it with `cargo build --release --workspace --bins`): {e}",
                server.display()
            )
        })?;
    let kubectl = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
    println!(
        "kubesim: {} nodes, {} pods; ha-metrics-server on 127.0.0.1:{}",
        args.nodes,
        args.nodes * args.pods_per_node,
        args.port
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
    println!(
        "\nmetrics appear after two scrapes ({} each); Ctrl-C stops everything.",
        args.metric_resolution
    );
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        status = child.wait() => println!("the server exited: {status:?}"),
    }
    if let Some(pid) = child.id() {
        // SIGTERM first: the server drains in-flight requests.
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
    cluster.shutdown();
    Ok(())
}
