//! The Kubernetes client and the kubelet client's credentials, both from `--kubeconfig` (or the
//! in-cluster service account), as metrics-server uses one rest config for both. A token file
//! (kubeconfig `tokenFile:`, the in-cluster projected service-account token) is re-read as it
//! rotates, by kube-rs for the API and by [`shard::scrape::BearerToken`] for kubelets.

use crate::config::Config;
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use secrecy::ExposeSecret;
use shard::scrape::tls::{Trust, client_config};
use shard::scrape::{BearerToken, KubeletClient};

/// The client configuration from `--kubeconfig`, or in-cluster.
pub async fn kube_config(config: &Config) -> anyhow::Result<kube::Config> {
    match &config.kubeconfig {
        Some(path) => {
            let kubeconfig =
                kube::config::Kubeconfig::read_from(path).with_context(|| format!("reading {}", path.display()))?;
            let options = kube::config::KubeConfigOptions::default();
            Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?)
        }
        None => Ok(kube::Config::infer()
            .await
            .context("no --kubeconfig and no in-cluster configuration")?),
    }
}

/// The bearer token of the client configuration: inline, or its token file (read now, and
/// again as it rotates).
fn bearer_token(kube: &kube::Config) -> anyhow::Result<Option<BearerToken>> {
    if let Some(token) = &kube.auth_info.token {
        return Ok(Some(BearerToken::fixed(token.expose_secret())?));
    }
    match &kube.auth_info.token_file {
        Some(file) => Ok(Some(BearerToken::file(std::path::Path::new(file))?)),
        None => Ok(None),
    }
}

/// The kubelet client: trust from `--kubelet-insecure-tls`, `--kubelet-certificate-authority`
/// or the kubeconfig's CA; identity from `--kubelet-client-certificate/-key`; the kubeconfig's
/// bearer token.
pub fn kubelet_client(config: &Config, kube: &kube::Config) -> anyhow::Result<KubeletClient> {
    let trust = if config.kubelet_insecure_tls {
        tracing::warn!("--kubelet-insecure-tls: kubelet serving certificates are not verified");
        Trust::Insecure
    } else if let Some(ca) = &config.kubelet_certificate_authority {
        let certs = CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("reading {}", ca.display()))?
            .collect::<Result<Vec<_>, _>>()?;
        Trust::Roots(certs)
    } else {
        let certs = kube
            .root_cert
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        Trust::Roots(certs)
    };
    let identity = match (&config.kubelet_client_certificate, &config.kubelet_client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
            Some((
                chain,
                PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?,
            ))
        }
        _ => None,
    };
    let tls = client_config(trust, identity)?;
    let client = KubeletClient::new(tls, None, config.kubelet_request_timeout, config.kubelet_max_body_bytes);
    Ok(match bearer_token(kube)? {
        Some(token) => client.with_token(token),
        None => client,
    })
}
