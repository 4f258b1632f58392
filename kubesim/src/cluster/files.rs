//! The files a cluster writes into its directory for clients: CAs, certificates, tokens and
//! kubeconfigs.

use crate::pki::{Ca, Leaf, LeafSpec, PkiError};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub const CLUSTER_CA_NAME: &str = "kubesim-ca";
pub const FRONT_PROXY_CA_NAME: &str = "kubesim-front-proxy-ca";
pub const PEER_CA_NAME: &str = "kubesim-peer-ca";
/// The front-proxy client certificate's CN, listed in `requestheader-allowed-names`.
pub const FRONT_PROXY_CLIENT: &str = "front-proxy-client";

/// The cluster's certificate authorities and the leaves made at start.
pub struct Pki {
    pub cluster_ca: Ca,
    pub front_proxy_ca: Ca,
    pub front_proxy_client: Leaf,
    pub peer_ca: Ca,
    pub apiserver: Leaf,
}

impl Pki {
    pub fn generate() -> Result<Pki, PkiError> {
        let cluster_ca = Ca::new(CLUSTER_CA_NAME)?;
        let front_proxy_ca = Ca::new(FRONT_PROXY_CA_NAME)?;
        let front_proxy_client = front_proxy_ca.issue(&LeafSpec {
            common_name: FRONT_PROXY_CLIENT.into(),
            client: true,
            ..Default::default()
        })?;
        let peer_ca = Ca::new(PEER_CA_NAME)?;
        let apiserver = cluster_ca.issue(&LeafSpec {
            common_name: "kube-apiserver".into(),
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            dns: vec!["localhost".into(), "kubernetes.default.svc".into()],
            server: true,
            ..Default::default()
        })?;
        Ok(Pki {
            cluster_ca,
            front_proxy_ca,
            front_proxy_client,
            peer_ca,
            apiserver,
        })
    }

    /// Writes every CA, leaf and a peer certificate for replicas on loopback into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        self.cluster_ca.write(dir, "ca")?;
        self.front_proxy_ca.write(dir, "front-proxy-ca")?;
        self.front_proxy_client.write(dir, "front-proxy-client")?;
        self.peer_ca.write(dir, "peer-ca")?;
        self.apiserver.write(dir, "apiserver")?;
        let peer = self.peer_ca.issue(&LeafSpec {
            common_name: "ha-metrics-server-peer".into(),
            ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            dns: vec!["localhost".into()],
            server: true,
            client: true,
            ..Default::default()
        })?;
        peer.write(dir, "peer")?;
        Ok(())
    }
}

/// A kubeconfig with one cluster, user and context; the user has an inline token.
pub fn kubeconfig(server: &str, ca: Option<&Path>, token: &str, namespace: &str) -> String {
    kubeconfig_with_user(server, ca, &format!("token: {token}"), namespace)
}

/// A kubeconfig whose user reads its token from `token_file`, as an in-cluster service account
/// does (clients re-read the file, so the token can rotate).
pub fn kubeconfig_with_token_file(server: &str, ca: Option<&Path>, token_file: &Path, namespace: &str) -> String {
    kubeconfig_with_user(server, ca, &format!("tokenFile: {}", token_file.display()), namespace)
}

fn kubeconfig_with_user(server: &str, ca: Option<&Path>, user: &str, namespace: &str) -> String {
    let ca = ca
        .map(|p| format!("\n    certificate-authority: {}", p.display()))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubesim\n  cluster:\n    server: {server}{ca}\nusers:\n- name: kubesim-user\n  user:\n    {user}\ncontexts:\n- name: kubesim\n  context:\n    cluster: kubesim\n    user: kubesim-user\n    namespace: {namespace}\ncurrent-context: kubesim\n"
    )
}

/// Paths of the files in a cluster directory.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dir: PathBuf,
}

impl Paths {
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }
    pub fn metrics_server_kubeconfig(&self) -> PathBuf {
        self.dir.join("metrics-server.kubeconfig")
    }
    /// The metrics server's service-account token (rotated by `Cluster::rotate_metrics_server_token`).
    pub fn metrics_server_token(&self) -> PathBuf {
        self.dir.join("metrics-server.token")
    }
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn front_proxy_ca(&self) -> PathBuf {
        self.dir.join("front-proxy-ca.crt")
    }
    pub fn peer_ca(&self) -> PathBuf {
        self.dir.join("peer-ca.crt")
    }
    /// The replicas' peer certificate and key (one for all, from the peer CA).
    pub fn peer_cert(&self) -> PathBuf {
        self.dir.join("peer.crt")
    }
    pub fn peer_key(&self) -> PathBuf {
        self.dir.join("peer.key")
    }
}

/// A fresh random token.
pub fn token(rng: &mut crate::sim::rng::Rng) -> String {
    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}
