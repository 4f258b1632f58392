//! The processes a scale benchmark measures: `kubesim` (its cost reported apart) and N
//! `ha-metrics-server` replicas with peers, all children of the benchmark.

use anyhow::Context;
use kubesim::cluster::files::Paths;
use kubesim::launch::{PeerArgs, ReplicaArgs, peer_list};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub struct Procs {
    pub dir: PathBuf,
    pub api: String,
    pub kubesim: Child,
    pub replicas: Vec<Child>,
    /// Metrics API port of each replica.
    pub ports: Vec<u16>,
}

impl Procs {
    pub fn kubesim_pid(&self) -> u32 {
        self.kubesim.id().unwrap_or(0)
    }

    pub fn replica_pids(&self) -> Vec<u32> {
        self.replicas.iter().filter_map(|c| c.id()).collect()
    }

    /// Waits until some replica exits; returns how.
    pub async fn first_exit(&mut self) -> String {
        let waits = self.replicas.iter_mut().map(|c| Box::pin(c.wait()));
        let (status, i, _) = futures::future::select_all(waits).await;
        format!("replica {i}: {status:?}")
    }

    pub async fn stop(mut self) {
        for r in &mut self.replicas {
            let _ = r.start_kill();
            let _ = r.wait().await;
        }
        let _ = self.kubesim.start_kill();
        let _ = self.kubesim.wait().await;
        match std::env::var_os("SCALE_BENCH_KEEP") {
            Some(_) => eprintln!("kept {} (replica logs)", self.dir.display()),
            None => {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// Starts kubesim with `nodes` x `pods`, then `replicas` servers on `port`, `port + 1`, ...
/// (leave 200 ports between concurrent runs)
/// (peer ports `port + 100 + i`) at `resolution`.
pub async fn start(
    bins: &Path,
    nodes: u32,
    pods: u32,
    replicas: u16,
    port: u16,
    resolution: &str,
) -> anyhow::Result<Procs> {
    let dir = std::env::temp_dir().join(format!("scale-bench-{}-{port}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut kubesim = Command::new(bins.join("kubesim"));
    kubesim
        .args([
            "--nodes",
            &nodes.to_string(),
            "--pods-per-node",
            &pods.to_string(),
            "--log",
            "warn",
            // The manifests' readinessProbe period (deploy/): each probe is a new TLS
            // connection per replica, as the kubelet's are.
            "--readiness-period",
            "10s",
        ])
        .arg("--dir")
        .arg(&dir);
    for i in 0..replicas {
        kubesim.arg("--replica").arg(format!("127.0.0.1:{}", port + i));
    }
    let kubesim = kubesim
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting kubesim")?;
    let api = wait_for_cluster(&dir.join("cluster.json")).await?;
    let timeout = kubesim::scenario::parse_duration(resolution)?
        .mul_f64(0.6)
        .max(Duration::from_secs(1));
    let mut children = Vec::new();
    for i in 0..replicas {
        children.push(replica(bins, &dir, i, replicas, port, resolution, timeout)?);
    }
    Ok(Procs {
        dir,
        api,
        kubesim,
        replicas: children,
        ports: (0..replicas).map(|i| port + i).collect(),
    })
}

fn replica(
    bins: &Path,
    dir: &Path,
    i: u16,
    n: u16,
    port: u16,
    resolution: &str,
    timeout: Duration,
) -> anyhow::Result<Child> {
    let peer = (n > 1).then(|| PeerArgs {
        peers: peer_list((0..n).map(|j| (format!("b{j}"), port + 100 + j))),
        name: format!("b{i}"),
        peer_port: port + 100 + i,
        data_dir: dir.join(format!("data-{i}")),
    });
    let launch = ReplicaArgs {
        cluster: Paths { dir: dir.to_path_buf() },
        port: port + i,
        cert_dir: dir.join(format!("certs-{i}")),
        resolution: resolution.to_string(),
        kubelet_timeout: Some(timeout),
        peer,
    };
    let mut c = Command::new(bins.join("ha-metrics-server"));
    c.args(launch.args());
    c.stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("replica-{i}.log")))?)
        .kill_on_drop(true)
        .spawn()
        .context("starting ha-metrics-server")
}

async fn wait_for_cluster(path: &Path) -> anyhow::Result<String> {
    for _ in 0..2400 {
        if let Ok(bytes) = std::fs::read(path) {
            let info: serde_json::Value = serde_json::from_slice(&bytes)?;
            return Ok(info["apiUrl"].as_str().unwrap_or_default().to_string());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    anyhow::bail!("kubesim did not come up")
}
