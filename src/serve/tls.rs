//! The serving certificate and rustls configuration of the Metrics API: `--tls-cert-file` /
//! `--tls-private-key-file`, or a self-signed certificate made in `--cert-dir` (as
//! metrics-server does); TLS 1.2+; front-proxy client certificates verified against
//! `--requestheader-client-ca-file` when given (connections without one are still accepted,
//! for health probes, and carry no identity).

use crate::config::{Config, TlsVersion, cipher_suites};
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;

/// Loads or makes the serving certificate and builds the server configuration.
pub fn server_config(config: &Config) -> anyhow::Result<rustls::ServerConfig> {
    let (chain, key) = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(cert), Some(key)) => load_pair(cert, key)?,
        _ => self_signed(&config.cert_dir)?,
    };
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
    let builder = rustls::ServerConfig::builder_with_provider(Arc::new(provider)).with_protocol_versions(versions)?;
    let builder = match &config.requestheader_client_ca_file {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).with_context(|| format!("reading {}", ca.display()))? {
                roots.add(cert?)?;
            }
            builder.with_client_cert_verifier(
                WebPkiClientVerifier::builder(Arc::new(roots))
                    .allow_unauthenticated()
                    .build()?,
            )
        }
        None => builder.with_no_client_auth(),
    };
    Ok(builder.with_single_cert(chain, key)?)
}

fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    Ok((chain, key))
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
