//! `scale-bench`: the cost of one `ha-metrics-server` replica against a large simulated
//! cluster. Starts `kubesim` and the server as child processes, lets the server scrape for a
//! warm-up, then reports from `/proc` the server's CPU and memory (kubesim's own cost apart),
//! kubelet requests per interval (kubesim's counters), and API latency percentiles for a
//! namespace LIST with a label selector and for the all-namespace pod LIST.

use anyhow::Context;
use bytes::Bytes;
use chaos::procstat::{TICKS_PER_SECOND, tree_usage};
use chaos::scenario::parse_duration;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "scale-bench", about)]
struct Args {
    #[arg(long, default_value_t = 5000)]
    nodes: u32,
    #[arg(long, default_value_t = 30)]
    pods_per_node: u32,
    /// The server's --metric-resolution.
    #[arg(long, default_value = "15s")]
    resolution: String,
    /// Measured intervals after two warm-up intervals.
    #[arg(long, default_value_t = 4)]
    intervals: u32,
    /// Requests per latency measurement.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    #[arg(long, default_value_t = 18500)]
    port: u16,
    /// Directory of the `kubesim` and `ha-metrics-server` binaries (default: this one's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let interval = parse_duration(&args.resolution)?;
    let bins = args
        .bin_dir
        .clone()
        .unwrap_or_else(|| std::env::current_exe().unwrap().parent().unwrap().to_path_buf());
    let dir = std::env::temp_dir().join(format!("scale-bench-{}", std::process::id()));
    let mut kubesim = tokio::process::Command::new(bins.join("kubesim"))
        .args([
            "--nodes",
            &args.nodes.to_string(),
            "--pods-per-node",
            &args.pods_per_node.to_string(),
            "--log",
            "warn",
        ])
        .arg("--dir")
        .arg(&dir)
        .arg("--replica")
        .arg(format!("127.0.0.1:{}", args.port))
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting kubesim")?;
    let api = wait_for_file(&dir.join("cluster.json")).await?;
    let timeout = interval.mul_f64(0.6).max(Duration::from_secs(1));
    let mut server = tokio::process::Command::new(bins.join("ha-metrics-server"))
        .arg(format!(
            "--kubeconfig={}",
            dir.join("metrics-server.kubeconfig").display()
        ))
        .arg(format!("--secure-port={}", args.port))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--cert-dir={}", dir.join("server-certs").display()))
        .arg(format!("--metric-resolution={}", args.resolution))
        .arg(format!("--kubelet-request-timeout={}ms", timeout.as_millis()))
        .arg("--kubelet-preferred-address-types=InternalIP")
        .arg("--kubelet-use-node-status-port")
        .arg(format!(
            "--requestheader-client-ca-file={}",
            dir.join("front-proxy-ca.crt").display()
        ))
        .arg("--requestheader-allowed-names=front-proxy-client")
        .stderr(std::fs::File::create(dir.join("server.log"))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting ha-metrics-server")?;
    let (server_pid, kubesim_pid) = (server.id().context("pid")?, kubesim.id().context("pid")?);
    let leaf = chaos::pki::Leaf::load(&dir, "front-proxy-client")?;
    let client = chaos::tls::https_client(chaos::tls::insecure_client(Some(&leaf))?);
    let base = format!("https://127.0.0.1:{}", args.port);
    eprintln!("cluster up at {api}; warming up for two intervals");
    tokio::time::sleep(interval * 2).await;

    let (s0, k0, c0, t0) = (
        tree_usage(server_pid),
        tree_usage(kubesim_pid),
        scrapes(&api).await?,
        Instant::now(),
    );
    tokio::time::sleep(interval * args.intervals).await;
    let (s1, k1, c1, secs) = (
        tree_usage(server_pid),
        tree_usage(kubesim_pid),
        scrapes(&api).await?,
        t0.elapsed().as_secs_f64(),
    );
    let mcpu = |a: u64, b: u64| (b - a) as f64 / TICKS_PER_SECOND / secs * 1000.0;
    let (server_mcpu, kubesim_mcpu) = (mcpu(s0.cpu_ticks, s1.cpu_ticks), mcpu(k0.cpu_ticks, k1.cpu_ticks));
    let per_interval = (c1 - c0) as f64 / (secs / interval.as_secs_f64());

    let served = get(&client, &format!("{base}/apis/metrics.k8s.io/v1beta1/pods"))
        .await?
        .1;
    let served: Value = serde_json::from_slice(&served)?;
    let pods = served["items"].as_array().map_or(0, Vec::len);
    let sample = &served["items"][0];
    let (ns, app) = (
        sample["metadata"]["namespace"].as_str().unwrap_or("default"),
        sample["metadata"]["labels"]["app"].as_str().unwrap_or(""),
    );
    let ns_list = format!("{base}/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector=app%3D{app}");
    let (p50, p99, n) = latency(&client, &ns_list, args.requests).await?;
    let all = format!("{base}/apis/metrics.k8s.io/v1beta1/pods");
    let (a50, a99, _) = latency(&client, &all, (args.requests / 10).max(5)).await?;
    let rss_after_queries = tree_usage(server_pid).rss_bytes;

    println!(
        "nodes={} pods={} served pods={} resolution={} measured={secs:.0}s",
        args.nodes,
        args.nodes * args.pods_per_node,
        pods,
        args.resolution
    );
    println!(
        "server: {server_mcpu:.0} mCPU ({:.4} mCPU/node), RSS {:.0} MiB idle / {:.0} MiB after queries ({:.3} MiB/node)",
        server_mcpu / args.nodes as f64,
        s1.rss_bytes as f64 / 1048576.0,
        rss_after_queries as f64 / 1048576.0,
        s1.rss_bytes as f64 / 1048576.0 / args.nodes as f64
    );
    println!(
        "kubelet requests per interval: {per_interval:.0} (nodes {})",
        args.nodes
    );
    println!(
        "namespace LIST with selector ({n} pods): p50 {:.1} ms, p99 {:.1} ms",
        p50 * 1e3,
        p99 * 1e3
    );
    println!(
        "all-namespace LIST ({pods} pods): p50 {:.0} ms, p99 {:.0} ms",
        a50 * 1e3,
        a99 * 1e3
    );
    println!(
        "kubesim itself: {kubesim_mcpu:.0} mCPU, RSS {:.0} MiB",
        k1.rss_bytes as f64 / 1048576.0
    );
    let _ = server.start_kill();
    let _ = kubesim.start_kill();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn wait_for_file(path: &std::path::Path) -> anyhow::Result<String> {
    for _ in 0..1200 {
        if let Ok(bytes) = std::fs::read(path) {
            let info: Value = serde_json::from_slice(&bytes)?;
            return Ok(info["apiUrl"].as_str().unwrap_or_default().to_string());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("kubesim did not come up")
}

/// Total authorised scrapes over all kubelets.
async fn scrapes(api: &str) -> anyhow::Result<u64> {
    let client: Client<_, Empty<Bytes>> = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let body = client
        .get(format!("{api}/kubesim/v1/kubelets").parse()?)
        .await?
        .into_body()
        .collect()
        .await?
        .to_bytes();
    let stats: Value = serde_json::from_slice(&body)?;
    Ok(stats
        .as_object()
        .map_or(0, |m| m.values().filter_map(|v| v["scrapes"].as_u64()).sum()))
}

type Https =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, chaos::http::Body>;

async fn get(client: &Https, url: &str) -> anyhow::Result<(Duration, Bytes)> {
    let req = http::Request::get(url)
        .header("X-Remote-User", "bench")
        .header("X-Remote-Group", "system:masters")
        .body(chaos::http::empty())?;
    let started = Instant::now();
    let resp = client.request(req).await?;
    anyhow::ensure!(resp.status().is_success(), "{url}: {}", resp.status());
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((started.elapsed(), body))
}

/// p50 and p99 latency (seconds) of `n` sequential GETs, and the item count of the last answer.
async fn latency(client: &Https, url: &str, n: usize) -> anyhow::Result<(f64, f64, usize)> {
    let mut times = Vec::with_capacity(n);
    let mut items = 0;
    for _ in 0..n {
        let (took, body) = get(client, url).await?;
        times.push(took.as_secs_f64());
        items = serde_json::from_slice::<Value>(&body)?["items"]
            .as_array()
            .map_or(0, Vec::len);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        times[((times.len() as f64 * p).ceil() as usize)
            .saturating_sub(1)
            .min(times.len() - 1)]
    };
    Ok((pct(0.50), pct(0.99), items))
}
