//! The one way every harness starts `ha-metrics-server` against a kubesim cluster (the chaos
//! runner, the scale benchmark, the demo and the end-to-end tests): the flags of a deployment
//! behind the aggregator, and the peer flags of a replica set. Each harness keeps its own
//! process handling (logs, signals, cgroups); the flags are written once, here.

use crate::cluster::files::Paths;
use std::path::PathBuf;
use std::time::Duration;

/// One replica's flags.
#[derive(Debug, Clone)]
pub struct ReplicaArgs {
    /// The cluster directory: kubeconfig, CAs and the peer certificate.
    pub cluster: Paths,
    /// `--secure-port` (on 127.0.0.1).
    pub port: u16,
    /// `--cert-dir`: where the self-signed serving certificate goes.
    pub cert_dir: PathBuf,
    /// `--metric-resolution`.
    pub resolution: String,
    /// `--kubelet-request-timeout`; the server's default when `None`.
    pub kubelet_timeout: Option<Duration>,
    /// With peers: a member of a replica set.
    pub peer: Option<PeerArgs>,
}

/// A replica set member's own flags.
#[derive(Debug, Clone)]
pub struct PeerArgs {
    /// `--peers`, as [`peer_list`] writes it.
    pub peers: String,
    /// `--replica-id`.
    pub name: String,
    /// `--peer-port` (on 127.0.0.1), also advertised.
    pub peer_port: u16,
    /// `--data-dir`.
    pub data_dir: PathBuf,
}

impl ReplicaArgs {
    pub fn args(&self) -> Vec<String> {
        let paths = &self.cluster;
        let mut args = vec![
            format!("--kubeconfig={}", paths.metrics_server_kubeconfig().display()),
            format!("--secure-port={}", self.port),
            "--bind-address=127.0.0.1".into(),
            format!("--cert-dir={}", self.cert_dir.display()),
            format!("--metric-resolution={}", self.resolution),
        ];
        if let Some(timeout) = self.kubelet_timeout {
            args.push(format!("--kubelet-request-timeout={}ms", timeout.as_millis()));
        }
        args.extend([
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--kubelet-use-node-status-port".into(),
            format!("--requestheader-client-ca-file={}", paths.front_proxy_ca().display()),
            "--requestheader-allowed-names=front-proxy-client".into(),
        ]);
        if let Some(peer) = &self.peer {
            args.extend([
                format!("--peers={}", peer.peers),
                format!("--replica-id={}", peer.name),
                "--peer-bind-address=127.0.0.1".into(),
                format!("--peer-port={}", peer.peer_port),
                format!("--peer-advertise-address=127.0.0.1:{}", peer.peer_port),
                format!("--peer-cert-file={}", paths.peer_cert().display()),
                format!("--peer-key-file={}", paths.peer_key().display()),
                format!("--peer-ca-file={}", paths.peer_ca().display()),
                format!("--data-dir={}", peer.data_dir.display()),
            ]);
        }
        args
    }
}

/// `--peers` for members `(name, peer port)` on 127.0.0.1.
pub fn peer_list<N: AsRef<str>>(members: impl IntoIterator<Item = (N, u16)>) -> String {
    members
        .into_iter()
        .map(|(name, port)| format!("{}=127.0.0.1:{port}", name.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}
