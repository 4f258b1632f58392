//! `kubesim-bench`: measures kubesim's own cost at scale. Starts `kubesim` as a child process,
//! scrapes every kubelet once per interval over kept-alive HTTPS connections (as a metrics
//! server would), and reports the simulator's CPU, memory and bytes served per second, read
//! from `/proc` for the kubesim process tree only.

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use kubesim::procstat::{TICKS_PER_SECOND, tree_usage};
use kubesim::scenario::parse_duration;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "kubesim-bench", about)]
struct Args {
    #[arg(long, default_value_t = 5000)]
    nodes: u32,
    #[arg(long, default_value_t = 30)]
    pods_per_node: u32,
    /// Scrape interval (the metric resolution).
    #[arg(long, default_value = "15s")]
    interval: String,
    /// Measured intervals, after one warm-up interval.
    #[arg(long, default_value_t = 4)]
    intervals: u32,
    /// Passed to kubesim: more nodes than this start kubelet worker processes.
    #[arg(long, default_value_t = kubesim::cluster::DEFAULT_KUBELETS_PER_PROCESS)]
    kubelets_per_process: u32,
    /// The kubesim binary (default: next to this one).
    #[arg(long)]
    kubesim: Option<PathBuf>,
}

#[derive(Default)]
struct Counters {
    scrapes: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let interval = parse_duration(&args.interval)?;
    let kubesim = match args.kubesim {
        Some(p) => p,
        None => std::env::current_exe()?.with_file_name("kubesim"),
    };
    let dir = std::env::temp_dir().join(format!("kubesim-bench-{}", std::process::id()));
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&kubesim)
        .args([
            "--nodes",
            &args.nodes.to_string(),
            "--pods-per-node",
            &args.pods_per_node.to_string(),
        ])
        .arg("--dir")
        .arg(&dir)
        .args([
            "--log",
            "warn",
            "--kubelets-per-process",
            &args.kubelets_per_process.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", kubesim.display()))?;
    let pid = child.id().context("kubesim pid")?;
    let api = wait_for_cluster(&dir, args.nodes).await?;
    let startup = started.elapsed();
    let startup_usage = tree_usage(pid);
    eprintln!(
        "kubesim up in {:.1}s ({} processes)",
        startup.as_secs_f64(),
        kubesim::procstat::tree(pid).len()
    );

    let targets = kubelet_addresses(&api).await?;
    eprintln!("scraping {} kubelets every {}", targets.len(), args.interval);
    let token = std::fs::read_to_string(dir.join("metrics-server.token"))?;
    let ca_pem = std::fs::read(dir.join("ca.crt"))?;
    let ca = rustls::pki_types::pem::PemObject::from_pem_slice(&ca_pem).context("ca.crt")?;
    let tls = kubesim::tls::verified_client(&ca, None)?;
    let client = Arc::new(kubesim::tls::https_client(tls));
    let counters = Arc::new(Counters::default());
    for addr in targets.clone() {
        let (client, counters, token) = (client.clone(), counters.clone(), token.clone());
        tokio::spawn(scrape_loop(client, counters, addr, token, interval));
    }
    tokio::time::sleep(interval).await;
    let (u0, c0, t0) = (tree_usage(pid), snapshot(&counters), Instant::now());
    tokio::time::sleep(interval * args.intervals).await;
    let (u1, c1, elapsed) = (tree_usage(pid), snapshot(&counters), t0.elapsed().as_secs_f64());
    child.start_kill()?;
    let _ = std::fs::remove_dir_all(&dir);

    let cpu_mcpu = (u1.cpu_ticks - u0.cpu_ticks) as f64 / TICKS_PER_SECOND / elapsed * 1000.0;
    let scrapes = c1.0 - c0.0;
    let bytes_per_s = (c1.2 - c0.2) as f64 / elapsed;
    println!(
        "nodes={} pods/node={} interval={} measured={:.0}s",
        args.nodes, args.pods_per_node, args.interval, elapsed
    );
    println!(
        "startup: {:.1}s wall, {:.1}s CPU",
        startup.as_secs_f64(),
        startup_usage.cpu_ticks as f64 / TICKS_PER_SECOND
    );
    println!(
        "kubesim CPU: {cpu_mcpu:.0} mCPU ({:.3} mCPU per node)",
        cpu_mcpu / args.nodes as f64
    );
    println!("kubesim RSS: {:.0} MiB", u1.rss_bytes as f64 / 1048576.0);
    println!(
        "served: {:.2} MiB/s, {:.0} scrapes/s, {:.1} KiB per scrape, errors {}",
        bytes_per_s / 1048576.0,
        scrapes as f64 / elapsed,
        (c1.2 - c0.2) as f64 / scrapes.max(1) as f64 / 1024.0,
        c1.1 - c0.1
    );
    Ok(())
}

fn snapshot(c: &Counters) -> (u64, u64, u64) {
    (
        c.scrapes.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
        c.bytes.load(Ordering::Relaxed),
    )
}

async fn wait_for_cluster(dir: &std::path::Path, nodes: u32) -> anyhow::Result<String> {
    for _ in 0..1200 {
        if let Ok(info) = std::fs::read(dir.join("cluster.json")) {
            let info: Value = serde_json::from_slice(&info)?;
            let api = info["apiUrl"].as_str().unwrap_or_default().to_string();
            if let Ok(summary) = get_json(&format!("{api}/kubesim/v1/cluster")).await
                && summary["nodes"] == nodes
            {
                return Ok(api);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("kubesim did not come up within 5 minutes")
}

async fn get_json(url: &str) -> anyhow::Result<Value> {
    let client: Client<_, Empty<Bytes>> = Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let resp = client.get(url.parse()?).await?;
    Ok(serde_json::from_slice(&resp.into_body().collect().await?.to_bytes())?)
}

async fn kubelet_addresses(api: &str) -> anyhow::Result<Vec<String>> {
    let stats = get_json(&format!("{api}/kubesim/v1/kubelets")).await?;
    let map = stats.as_object().context("kubelet stats")?;
    Ok(map
        .values()
        .filter_map(|v| v["address"].as_str().map(String::from))
        .collect())
}

type HttpsClient =
    Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, kubesim::http::Body>;

async fn scrape_loop(
    client: Arc<HttpsClient>,
    counters: Arc<Counters>,
    addr: String,
    token: String,
    interval: Duration,
) {
    let jitter = kubesim::sim::rng::Rng::new(addr.len() as u64 ^ addr.bytes().map(u64::from).sum::<u64>()).unit();
    tokio::time::sleep(interval.mul_f64(jitter)).await;
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let req = http::Request::get(format!("https://{addr}/metrics/resource"))
            .header("Authorization", format!("Bearer {}", token.trim()))
            .body(kubesim::http::empty())
            .expect("valid request");
        let result = async {
            let resp = client.request(req).await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            Some(resp.into_body().collect().await.ok()?.to_bytes().len())
        };
        match tokio::time::timeout(Duration::from_secs(10), result).await {
            Ok(Some(n)) => {
                counters.scrapes.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            _ => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
