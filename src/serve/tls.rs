//! The serving TLS configuration of the Metrics API: `--tls-cert-file` / `--tls-private-key-file`
//! (reloaded when they change, see [`super::reload`]) or a self-signed certificate made in
//! `--cert-dir` (as metrics-server does); TLS 1.2+ (`--tls-min-version`, `--tls-cipher-suites`);
//! client certificates checked against the live client and request-header CAs
//! ([`crate::auth::verifier`]); connections without one are accepted and carry no certificate
//! identity.

use super::reload::{ReloadingCert, certified_key, load_pair};
use crate::auth::cas::DynamicAuthn;
use crate::auth::verifier::DynamicVerifier;
use crate::config::{Config, TlsVersion, cipher_suites};
use anyhow::Context;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Loads or makes the serving certificate and builds the server configuration. The returned
/// certificate holder reloads its files once [`ReloadingCert::spawn_watch`] runs.
pub fn server_config(
    config: &Config,
    dynamic: Arc<DynamicAuthn>,
) -> anyhow::Result<(rustls::ServerConfig, Arc<ReloadingCert>)> {
    let (chain, key, files) = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(cert), Some(key)) => {
            let (chain, k) = load_pair(cert, key)?;
            (chain, k, Some((cert.clone(), key.clone())))
        }
        _ => {
            let (chain, key) = self_signed(&config.cert_dir)?;
            (chain, key, None)
        }
    };
    let cert = ReloadingCert::new(certified_key(chain, key)?, files);
    let mut provider = rustls::crypto::ring::default_provider();
    let suites = cipher_suites(&config.tls_cipher_suites).map_err(anyhow::Error::msg)?;
    if !suites.is_empty() {
        provider.cipher_suites = suites;
    }
    let (min, _) = TlsVersion::parse(&config.tls_min_version).map_err(anyhow::Error::msg)?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)?
        .with_client_cert_verifier(Arc::new(DynamicVerifier::new(dynamic)))
        .with_cert_resolver(cert.clone());
    Ok((server, cert))
}

/// `apiserver.crt` / `apiserver.key` in `dir`, made once if missing (SANs: localhost,
/// 127.0.0.1 and the hostname).
fn self_signed(dir: &Path) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let (cert, key) = (dir.join("apiserver.crt"), dir.join("apiserver.key"));
    if !cert.exists() || !key.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating --cert-dir {}", dir.display()))?;
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
            names.extend(Some(host.trim().to_string()).filter(|h| !h.is_empty()));
        }
        let made = rcgen::generate_simple_self_signed(names)?;
        std::fs::write(&cert, made.cert.pem())?;
        std::fs::write(&key, made.signing_key.serialize_pem())?;
        tracing::info!(dir = %dir.display(), "generated a self-signed serving certificate");
    }
    load_pair(&cert, &key)
}
