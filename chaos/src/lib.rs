//! `chaos`: the cluster simulator `kubesim` (a fake kube-apiserver with an aggregation proxy and
//! thousands of fake kubelets), fault injection, the chaos runner ([`runner`], binary `chaos`)
//! and the scale benchmark ([`bench`], binary `scale-bench`).
//!
//! Everything else in the project is tested against this crate, so it speaks the real
//! protocols: the kubelet's `/metrics/resource` text format over HTTPS, the apiserver's list and
//! watch JSON, and the aggregation layer's front-proxy authentication.

pub mod apiserver;
pub mod bench;
pub mod cluster;
pub mod http;
pub mod kubelet;
pub mod launch;
pub mod pki;
pub mod ports;
pub mod procstat;
pub mod runner;
pub mod scenario;
pub mod sim;
pub mod tls;

pub use cluster::{Cluster, ClusterConfig};

/// The `kubesim` binary next to the running executable (tests live in `target/<profile>/deps`).
pub fn kubesim_bin() -> anyhow::Result<std::path::PathBuf> {
    if let Ok(path) = std::env::var("KUBESIM_BIN") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        let candidate = d.join("kubesim");
        if candidate.is_file() {
            return Ok(candidate);
        }
        dir = d.parent();
    }
    anyhow::bail!("kubesim binary not found near {}; set KUBESIM_BIN", exe.display())
}
