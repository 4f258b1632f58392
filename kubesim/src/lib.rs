//! kubesim: a simulated Kubernetes cluster that speaks the real protocols, so that what passes
//! against it works in a real cluster: a fake kube-apiserver ([`apiserver`]: list and watch JSON,
//! Tables, discovery, and the aggregation layer's proxy with front-proxy authentication),
//! thousands of fake kubelets ([`kubelet`]: `/metrics/resource` text over HTTPS, with faults),
//! the simulated world and its ground truth ([`sim`]), and the whole in-process cluster
//! ([`cluster`]). Everything else in the project is tested against it: the end-to-end tests, the
//! chaos runner and the scale benchmark (crate `chaos`) all start the server with [`launch`].

pub mod apiserver;
pub mod cluster;
pub mod http;
pub mod kubelet;
pub mod launch;
pub mod pki;
pub mod ports;
pub mod procstat;
pub mod scenario;
pub mod sim;
pub mod tls;

pub use cluster::{Cluster, ClusterConfig};

/// Gives the heap freed after building a cluster back to the kernel. Building the objects of
/// 150,000 pods leaves hundreds of MiB free in glibc's per-thread arenas (JSON values, the
/// initial events), which it keeps for good otherwise (glibc only; a no-op elsewhere).
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks and releases glibc's own free lists; it is thread-safe and
    // takes no pointers from us.
    unsafe {
        libc::malloc_trim(0);
    }
}

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
