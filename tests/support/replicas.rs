//! Several replica processes with peers, behind kubesim's aggregation proxy: start, kill -9,
//! restart with or without their data dir, SIGSTOP/SIGCONT, and read their self-metrics.

use super::{Server, free_port, spawn_with_env};
use std::path::PathBuf;

pub struct Replica {
    pub name: String,
    pub port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub process: Option<Server>,
}

pub struct Replicas {
    pub replicas: Vec<Replica>,
    /// Whose aggregation proxy lists the replicas as endpoints.
    cluster: kubesim::Cluster,
    /// `--peers`: the first `listed` replicas.
    peers: String,
    extra: Vec<String>,
    /// Environment every replica starts with (for example `RUST_LOG` for a finer log).
    pub env: Vec<(String, String)>,
}

impl Replicas {
    /// Prepares `total` replicas named `r0..`; the first `listed` make up `--peers`.
    pub fn new(cluster: &kubesim::Cluster, total: usize, listed: usize, extra: &[&str]) -> Replicas {
        let replicas: Vec<Replica> = (0..total)
            .map(|i| {
                let port = free_port();
                Replica {
                    name: format!("r{i}"),
                    port,
                    peer_port: free_port(),
                    data_dir: cluster.dir().join(format!("replica-{i}-{port}")),
                    process: None,
                }
            })
            .collect();
        let peers = kubesim::launch::peer_list(replicas[..listed].iter().map(|r| (r.name.as_str(), r.peer_port)));
        Replicas {
            replicas,
            cluster: cluster.clone(),
            peers,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
        }
    }

    /// Starts replica `i` (keeping its data dir unless `fresh`) and updates the proxy.
    pub fn start(&mut self, cluster: &kubesim::Cluster, i: usize, fresh: bool) {
        self.start_with(cluster, i, fresh, &[]);
    }

    /// [`Replicas::start`] with flags of its own after the common ones.
    pub fn start_with(&mut self, cluster: &kubesim::Cluster, i: usize, fresh: bool, more: &[&str]) {
        let r = &mut self.replicas[i];
        if fresh {
            let _ = std::fs::remove_dir_all(&r.data_dir);
        }
        let peer = kubesim::launch::PeerArgs {
            peers: self.peers.clone(),
            name: r.name.clone(),
            peer_port: r.peer_port,
            data_dir: r.data_dir.clone(),
        };
        let mut args = kubesim::launch::ReplicaArgs {
            peer: Some(peer),
            ..super::launch_args(cluster, r.port)
        }
        .args();
        args.push("--v=2".into());
        args.extend(self.extra.iter().cloned());
        args.extend(more.iter().map(|s| s.to_string()));
        r.process = Some(spawn_with_env(cluster, r.port, args, &self.env));
        self.update_proxy(cluster);
    }

    /// kill -9 of replica `i`. Its endpoint leaves the aggregation proxy at once, as the kubelet
    /// marks a pod whose container died not ready (kubesim does not model the kubelet's ~1 s to
    /// notice); requests in flight to it fail.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut server) = self.replicas[i].process.take() {
            let _ = server.child.start_kill();
        }
        let cluster = self.cluster.clone();
        self.update_proxy(&cluster);
    }

    /// Points the aggregation proxy at every started replica.
    pub fn update_proxy(&self, cluster: &kubesim::Cluster) {
        let alive: Vec<String> = self
            .replicas
            .iter()
            .filter(|r| r.process.is_some())
            .map(|r| format!("127.0.0.1:{}", r.port))
            .collect();
        cluster.set_replicas(&alive);
    }

    pub fn alive(&self) -> impl Iterator<Item = (usize, &Replica)> {
        self.replicas.iter().enumerate().filter(|(_, r)| r.process.is_some())
    }

    /// Sends a signal (`TERM`, `STOP`, ...) to replica `i`. `TERM` is a pod deletion: the
    /// endpoint leaves the proxy first (a terminating pod is not a ready endpoint), then the
    /// replica drains. Other signals leave the endpoint to the readiness probe.
    pub fn signal(&self, i: usize, signal: &str) {
        if signal == "TERM" {
            let others: Vec<String> = self
                .alive()
                .filter(|&(j, _)| j != i)
                .map(|(_, r)| format!("127.0.0.1:{}", r.port))
                .collect();
            self.cluster.set_replicas(&others);
        }
        if let Some(pid) = self.replicas[i].process.as_ref().and_then(|p| p.child.id()) {
            let _ = std::process::Command::new("kill")
                .args([&format!("-{signal}"), &pid.to_string()])
                .status();
        }
    }

    /// One self-metric of replica `i` (first sample whose line starts with `name`).
    pub async fn metric(&self, cluster: &kubesim::Cluster, i: usize, name: &str) -> Option<f64> {
        let (code, text) = super::direct_get(cluster, self.replicas[i].port, "/metrics")
            .await
            .ok()?;
        if code != 200 {
            return None;
        }
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }
}

/// A peer-channel client with the cluster's peer certificate (a replica's own credentials).
pub fn peer_client(cluster: &kubesim::Cluster) -> ha_metrics_server::peer::transport::PeerClient {
    use ha_metrics_server::peer::transport::{PeerClient, PeerTls};
    let dir = cluster.dir();
    let tls = PeerTls::load(&dir.join("peer.crt"), &dir.join("peer.key"), &dir.join("peer-ca.crt")).unwrap();
    PeerClient::new(&tls)
}

/// What the replica on `peer_port` says of itself and its shard map; `None` if it does not
/// answer within 3 s.
pub async fn peer_info(
    client: &ha_metrics_server::peer::transport::PeerClient,
    peer_port: u16,
) -> Option<ha_metrics_server::peer::wire::Info> {
    use ha_metrics_server::peer::wire::{InfoRequest, path};
    let address = format!("127.0.0.1:{peer_port}");
    let request = InfoRequest::default();
    let call = client.call(&address, path::INFO, &request, std::time::Duration::from_secs(3));
    call.await.ok()
}
