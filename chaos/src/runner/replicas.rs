//! The replica processes of a run: `ha-metrics-server` started with peers against the
//! in-process cluster, killed with SIGKILL, stopped and continued, restarted with or without
//! their data dir, and registered with the aggregation proxy while they run. Their flags come
//! from [`kubesim::launch`].

use super::partition::Partitioner;
use kubesim::cluster::files::Paths;
use kubesim::launch::{PeerArgs, ReplicaArgs, peer_list};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// What the runner believes about a replica process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not started, killed or left.
    Down,
    Running,
    /// SIGSTOP.
    Frozen,
}

pub struct Replica {
    pub name: String,
    pub port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub incarnation: u32,
    pub state: State,
    child: Option<tokio::process::Child>,
}

impl Replica {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }
}

/// Flags every replica gets besides the per-replica ones.
pub struct ReplicaFlags {
    pub server_bin: PathBuf,
    pub resolution: String,
    pub extra: Vec<String>,
}

pub struct ReplicaSet {
    pub replicas: Vec<Replica>,
    peers: String,
    flags: ReplicaFlags,
    dir: PathBuf,
}

pub use kubesim::ports::free_port;

impl ReplicaSet {
    /// `total` replicas `r0..`; the first `listed` make up `--peers` (the others join later as
    /// learners: scale-out).
    pub fn new(dir: &Path, total: usize, listed: usize, flags: ReplicaFlags) -> ReplicaSet {
        let replicas: Vec<Replica> = (0..total)
            .map(|i| Replica {
                name: format!("r{i}"),
                port: free_port(),
                peer_port: free_port(),
                data_dir: dir.join(format!("data-r{i}")),
                log: dir.join(format!("r{i}.log")),
                incarnation: 0,
                state: State::Down,
                child: None,
            })
            .collect();
        let peers = peer_list(replicas[..listed].iter().map(|r| (r.name.as_str(), r.peer_port)));
        ReplicaSet {
            replicas,
            peers,
            flags,
            dir: dir.to_path_buf(),
        }
    }

    fn args(&self, i: usize) -> Vec<String> {
        let r = &self.replicas[i];
        let launch = ReplicaArgs {
            cluster: Paths { dir: self.dir.clone() },
            port: r.port,
            cert_dir: self.dir.join(format!("certs-{}", r.name)),
            resolution: self.flags.resolution.clone(),
            kubelet_timeout: None,
            peer: Some(PeerArgs {
                peers: self.peers.clone(),
                name: r.name.clone(),
                peer_port: r.peer_port,
                data_dir: r.data_dir.clone(),
            }),
        };
        let mut args = launch.args();
        args.extend(self.flags.extra.iter().cloned());
        args
    }

    /// Starts replica `i`, with an empty data dir when `fresh`; inside its partition cgroup
    /// when partitions are on (so every socket it opens is matched).
    pub fn start(&mut self, i: usize, fresh: bool, partitioner: Option<&Partitioner>) -> anyhow::Result<()> {
        if fresh {
            let _ = std::fs::remove_dir_all(&self.replicas[i].data_dir);
        }
        let args = self.args(i);
        let r = &mut self.replicas[i];
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&r.log)?;
        let mut command = match partitioner {
            Some(p) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c")
                    .arg("echo $$ > \"$0\" && exec \"$@\"")
                    .arg(p.procs_file(i)?)
                    .arg(&self.flags.server_bin);
                c
            }
            None => tokio::process::Command::new(&self.flags.server_bin),
        };
        let child = command
            .args(&args)
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", self.flags.server_bin.display()))?;
        r.child = Some(child);
        r.incarnation += 1;
        r.state = State::Running;
        Ok(())
    }

    /// SIGKILL; waits for the process to be gone.
    pub async fn kill(&mut self, i: usize) {
        let r = &mut self.replicas[i];
        if let Some(mut child) = r.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        r.state = State::Down;
    }

    /// SIGTERM and wait (the server drains and hands its shards over), SIGKILL after `grace`.
    pub async fn terminate(&mut self, i: usize, grace: Duration) {
        let r = &mut self.replicas[i];
        if let Some(mut child) = r.child.take() {
            if let Some(pid) = child.id() {
                signal(pid, "TERM");
            }
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
        r.state = State::Down;
    }

    pub fn freeze(&mut self, i: usize) {
        if let Some(pid) = self.replicas[i].pid() {
            signal(pid, "STOP");
            self.replicas[i].state = State::Frozen;
        }
    }

    pub fn thaw(&mut self, i: usize) {
        if let Some(pid) = self.replicas[i].pid() {
            signal(pid, "CONT");
            self.replicas[i].state = State::Running;
        }
    }

    /// Replicas the runner believes started that have exited on their own (or were signalled
    /// by someone else), with how.
    pub fn exited(&mut self) -> Vec<(usize, String)> {
        let mut gone = Vec::new();
        for (i, r) in self.replicas.iter_mut().enumerate() {
            if let Some(status) = r.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                gone.push((i, format!("{status}")));
            }
        }
        gone
    }

    /// Indices of replicas in `state`.
    pub fn in_state(&self, state: State) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|&i| self.replicas[i].state == state)
            .collect()
    }

    /// Metrics API addresses of every started replica (frozen ones too: the proxy finds out
    /// through readiness, as the aggregator does).
    pub fn proxy_addresses(&self) -> Vec<String> {
        self.replicas
            .iter()
            .filter(|r| r.state != State::Down)
            .map(|r| format!("127.0.0.1:{}", r.port))
            .collect()
    }

    /// Kills everything (end of run).
    pub async fn shutdown(&mut self) {
        for i in 0..self.replicas.len() {
            if self.replicas[i].state == State::Frozen {
                self.thaw(i);
            }
            self.terminate(i, Duration::from_secs(5)).await;
        }
    }
}

fn signal(pid: u32, name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}
