//! Name resolution for the kubelet and peer HTTP clients, in Rust (hickory): `/etc/hosts`, then
//! the name servers, search domains and `ndots` of `/etc/resolv.conf`, as a pod's libc would.
//!
//! Not glibc's `getaddrinfo`: the container image holds one statically linked binary, and a
//! static glibc cannot load the NSS modules `getaddrinfo` needs, so peer names such as
//! `ha-metrics-server-1.ha-metrics-server-peers.kube-system.svc` (and kubelets reached by
//! `Hostname`) would not resolve. IP literals never reach a resolver (hyper's connector parses
//! them itself).

use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolverConfig;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hyper_util::client::legacy::connect::dns::Name;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A shared resolver; clones share its cache.
#[derive(Clone)]
pub struct Resolver(Arc<TokioResolver>);

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// The system's configuration; without a readable `/etc/resolv.conf`, `/etc/hosts` only
    /// (never a public name server).
    pub fn system() -> Resolver {
        let builder = TokioResolver::builder_tokio().unwrap_or_else(|e| {
            tracing::warn!("no usable /etc/resolv.conf ({e}): names resolve from /etc/hosts only");
            let hosts_only = ResolverConfig::from_parts(None, vec![], vec![]);
            TokioResolver::builder_with_config(hosts_only, TokioRuntimeProvider::default())
        });
        match builder.build() {
            Ok(resolver) => Resolver(Arc::new(resolver)),
            Err(e) => {
                tracing::warn!("DNS resolver from /etc/resolv.conf failed ({e}): /etc/hosts only");
                let hosts_only = ResolverConfig::from_parts(None, vec![], vec![]);
                let resolver = TokioResolver::builder_with_config(hosts_only, TokioRuntimeProvider::default())
                    .build()
                    .expect("a resolver without name servers builds");
                Resolver(Arc::new(resolver))
            }
        }
    }

    /// The addresses of `host` (port 0: the connector sets the port).
    pub async fn lookup(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        let found = self
            .0
            .lookup_ip(host)
            .await
            .map_err(|e| std::io::Error::other(format!("resolving {host}: {e}")))?;
        Ok(found.iter().map(|ip| SocketAddr::new(ip, 0)).collect())
    }
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let me = self.clone();
        Box::pin(async move { Ok(me.lookup(name.as_str()).await?.into_iter()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_from_etc_hosts() {
        let found = Resolver::system().lookup("localhost").await.unwrap();
        assert!(found.iter().any(|a| a.ip().is_loopback()), "{found:?}");
    }
}
