//! End-to-end test support: kubesim in-process, the server as a real process registered behind
//! kubesim's aggregation proxy, and real kubectl 1.32.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

pub const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.32";
/// Scrape interval of test servers: short, so tests take seconds.
pub const RESOLUTION: &str = "2s";
/// Kubelet request timeout of test servers (half the resolution).
pub const KUBELET_TIMEOUT: Duration = Duration::from_secs(1);

pub mod replicas;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info")
        .with_test_writer()
        .try_init();
}

/// A kubesim cluster of `nodes` x `pods` with the default shape.
pub async fn cluster(nodes: u32, pods: u32, seed: u64) -> kubesim::Cluster {
    init_tracing();
    kubesim::Cluster::start(kubesim::ClusterConfig {
        nodes,
        pods_per_node: pods,
        seed,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// `(namespace, name)` of every Running pod in the simulation.
pub fn running_pods(cluster: &kubesim::Cluster) -> std::collections::BTreeSet<(String, String)> {
    cluster.with_world(|w| {
        w.pods
            .values()
            .filter(|p| p.phase == kubesim::sim::PodPhase::Running)
            .map(|p| (p.spec.namespace.clone(), p.spec.name.clone()))
            .collect()
    })
}

pub use kubesim::ports::free_port;

/// A running `ha-metrics-server` process; killed on drop.
pub struct Server {
    pub child: tokio::process::Child,
    pub port: u16,
    pub log: PathBuf,
}

/// Lines of a server's log printed when a test fails while the server runs.
const LOG_TAIL_LINES: usize = 60;

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
            eprintln!("--- last lines of {}:\n{}", self.log.display(), tail.join("\n"));
        }
    }
}

/// Starts the server against `cluster` with the flags a deployment behind the aggregator uses,
/// and points the aggregation proxy at it.
pub async fn start_server(cluster: &kubesim::Cluster, extra: &[&str]) -> Server {
    let server = spawn_server(cluster, free_port(), extra);
    cluster.set_replicas(&[format!("127.0.0.1:{}", server.port)]);
    server
}

/// The flags of a test server on `port` (no peers), from the launcher every harness uses.
pub fn launch_args(cluster: &kubesim::Cluster, port: u16) -> kubesim::launch::ReplicaArgs {
    kubesim::launch::ReplicaArgs {
        cluster: cluster.paths().clone(),
        port,
        cert_dir: cluster.dir().join(format!("server-certs-{port}")),
        resolution: RESOLUTION.into(),
        kubelet_timeout: Some(KUBELET_TIMEOUT),
        peer: None,
    }
}

/// Starts one server process on `port` (the aggregation proxy is not changed).
pub fn spawn_server(cluster: &kubesim::Cluster, port: u16, extra: &[&str]) -> Server {
    let mut args = launch_args(cluster, port).args();
    args.push("--v=2".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    spawn_with(cluster, port, args)
}

/// Starts the server with exactly `args`, its log in the cluster directory.
pub fn spawn_with(cluster: &kubesim::Cluster, port: u16, args: Vec<String>) -> Server {
    spawn_with_env(cluster, port, args, &[])
}

/// [`spawn_with`] with environment variables of its own.
pub fn spawn_with_env(cluster: &kubesim::Cluster, port: u16, args: Vec<String>, env: &[(String, String)]) -> Server {
    let log = cluster.dir().join(format!("server-{port}.log"));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ha-metrics-server"))
        .args(&args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .expect("server starts");
    Server { child, port, log }
}

/// GET straight at a replica over HTTPS as the front proxy (user `admin`, `system:masters`).
pub async fn direct_get(cluster: &kubesim::Cluster, port: u16, path: &str) -> Result<(u16, String), String> {
    use http_body_util::BodyExt;
    let identity = kubesim::pki::Leaf::load(cluster.dir(), "front-proxy-client").unwrap();
    let client = kubesim::tls::https_client(kubesim::tls::insecure_client(Some(&identity)).unwrap());
    let req = http::Request::get(format!("https://127.0.0.1:{port}{path}"))
        .header("X-Remote-User", "admin")
        .header("X-Remote-Group", "system:masters")
        .body(kubesim::http::empty())
        .unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Waits until `f` returns true, polling every 100 ms, for at most `limit`.
pub async fn eventually(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Runs kubectl 1.32 against the cluster (through the aggregation proxy) with a fresh cache.
pub async fn kubectl(cluster: &kubesim::Cluster, args: &[&str]) -> Output {
    kubectl_bin(cluster, KUBECTL, args).await
}

/// Runs the kubectl binary `bin` against the cluster with a fresh cache.
pub async fn kubectl_bin(cluster: &kubesim::Cluster, bin: &str, args: &[&str]) -> Output {
    let out = tokio::process::Command::new(bin)
        .arg("--kubeconfig")
        .arg(cluster.paths().kubeconfig())
        .arg("--cache-dir")
        .arg(cluster.dir().join(format!("kubectl-cache-{}", free_port())))
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{bin} runs: {e}"));
    tracing::info!(bin, ?args, status = ?out.status, stdout = %String::from_utf8_lossy(&out.stdout), stderr = %String::from_utf8_lossy(&out.stderr), "kubectl");
    out
}

pub fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// `kubectl get --raw PATH` parsed as JSON.
pub async fn raw(cluster: &kubesim::Cluster, path: &str) -> serde_json::Value {
    serde_json::from_str(&stdout(&kubectl(cluster, &["get", "--raw", path]).await)).unwrap()
}

/// Unix ms of an RFC 3339 timestamp.
pub fn millis(rfc3339: &str) -> i64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// Whether `served` is within `tolerance` (relative) of some value the truth takes for a sample
/// time anywhere in the served second (timestamps are served with second precision).
pub fn close_to_truth(served: f64, tolerance: f64, truth_at: impl Fn(i64) -> Option<f64>, ts_ms: i64) -> bool {
    let candidates: Vec<f64> = (0..=10).filter_map(|i| truth_at(ts_ms + i * 100)).collect();
    let (lo, hi) = candidates
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    !candidates.is_empty() && served >= lo * (1.0 - tolerance) - 1e-3 && served <= hi * (1.0 + tolerance) + 1e-3
}

/// Milliseconds of a Go duration string like `2.003s`, `1m0s`, `500ms`.
pub fn window_ms(go: &str) -> i64 {
    chaos::runner::clients::parse::duration_ms(go).unwrap_or_else(|| panic!("not a Go duration: {go}"))
}

/// CPU cores of a served quantity (`487558164n`, `12m`, `1`).
pub fn cores(q: &str) -> f64 {
    chaos::runner::clients::parse::cores(q).unwrap_or_else(|| panic!("not a CPU quantity: {q}"))
}

/// Bytes of a served memory quantity (`12240Ki`, `5Mi`, `12533761`).
pub fn bytes(q: &str) -> f64 {
    chaos::runner::clients::parse::bytes(q).unwrap_or_else(|| panic!("not a memory quantity: {q}"))
}
