//! Mutual TLS between replicas: each replica serves and calls with the same certificate, issued
//! by the peer CA. The server requires a client certificate chaining to that CA (no anonymous
//! connections, unlike the Metrics API port); the client trusts only that CA for servers and
//! checks their names (DNS or IP SAN) as usual. TLS 1.2+, ring provider.
//!
//! A peer certificate therefore needs both the `serverAuth` and `clientAuth` extended key usages
//! and a SAN for every address replicas dial it by (pod IP or headless-service DNS name).

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::Path;
use std::sync::Arc;

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The peer channel's server and client TLS configurations, built from one certificate.
#[derive(Clone)]
pub struct PeerTls {
    /// Requires a client certificate from the peer CA; ALPN `http/1.1`. `bind_rustls_0_23`
    /// takes the configuration by value: pass `(*tls.server).clone()`.
    pub server: Arc<rustls::ServerConfig>,
    /// Presents the replica's certificate and trusts only the peer CA. No ALPN protocols:
    /// hyper-rustls sets them itself and panics if some are already there.
    pub client: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls").finish_non_exhaustive()
    }
}

impl PeerTls {
    /// Reads the replica's PEM certificate chain and private key and the peer CA bundle.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<PeerTls> {
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
        let ca_certs = CertificateDer::pem_file_iter(ca)
            .with_context(|| format!("reading {}", ca.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing {}", ca.display()))?;
        PeerTls::new(chain, key, ca_certs).with_context(|| format!("peer TLS from {}", cert.display()))
    }

    /// Builds both configurations from DER: the replica's chain (leaf first), its key and the
    /// peer CA certificates.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Vec<CertificateDer<'static>>,
    ) -> anyhow::Result<PeerTls> {
        anyhow::ensure!(!chain.is_empty(), "no certificate in the peer certificate file");
        anyhow::ensure!(!ca.is_empty(), "no certificate in the peer CA file");
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca {
            roots.add(cert).context("adding a peer CA certificate")?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());

        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .context("the peer certificate and key")?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];

        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("the peer certificate and key")?;
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
        })
    }
}
