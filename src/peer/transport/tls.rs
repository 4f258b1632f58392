//! Mutual TLS between replicas: each replica serves and calls with the same certificate, issued
//! by the peer CA. The server requires a client certificate chaining to that CA (no anonymous
//! connections, unlike the Metrics API port); the client trusts only that CA for servers and
//! checks their names (DNS or IP SAN) as usual. TLS 1.2+, ring provider.
//!
//! A peer certificate therefore needs both the `serverAuth` and `clientAuth` extended key usages
//! and a SAN for every address replicas dial it by (pod IP or headless-service DNS name).
//!
//! The certificate, key and CA rotate (cert-manager renews the Secret, the kubelet rewrites the
//! mounted files): as the serving certificate does (`crate::serve::reload`), [`PeerTls`] checks
//! the three files every [`RELOAD_INTERVAL`] once [`PeerTls::spawn_watch`] runs, and a complete,
//! matching set replaces the old one for every new handshake, server and client side alike.
//! Connections already open keep the credentials they were made with. A set that fails to load
//! (half written, key not matching) keeps the old one, with an error log.

use anyhow::Context;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How often certificate files are checked for changes: the peer credentials here, and the
/// serving certificate (`crate::serve::reload` uses this constant too, so the two rotate alike).
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The peer channel's server and client TLS configurations, built from one certificate.
#[derive(Clone)]
pub struct PeerTls {
    /// Requires a client certificate from the peer CA; ALPN `http/1.1`. `bind_rustls_0_23`
    /// takes the configuration by value: pass `(*tls.server).clone()` (clones share the
    /// reloadable credentials).
    pub server: Arc<rustls::ServerConfig>,
    /// Presents the replica's certificate and trusts only the peer CA. No ALPN protocols:
    /// hyper-rustls sets them itself and panics if some are already there.
    pub client: Arc<rustls::ClientConfig>,
    credentials: Arc<Credentials>,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls").finish_non_exhaustive()
    }
}

/// One loaded set: what is presented and what is trusted.
struct Loaded {
    key: Arc<CertifiedKey>,
    client_verifier: Arc<dyn ClientCertVerifier>,
    server_verifier: Arc<WebPkiServerVerifier>,
}

impl Loaded {
    fn build(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Vec<CertificateDer<'static>>,
    ) -> anyhow::Result<Loaded> {
        anyhow::ensure!(!chain.is_empty(), "no certificate in the peer certificate file");
        anyhow::ensure!(!ca.is_empty(), "no certificate in the peer CA file");
        let mut roots = rustls::RootCertStore::empty();
        for cert in ca {
            roots.add(cert).context("adding a peer CA certificate")?;
        }
        let roots = Arc::new(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = CertifiedKey::from_der(chain, key, &provider).context("the peer certificate and key")?;
        Ok(Loaded {
            key: Arc::new(key),
            client_verifier: WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone()).build()?,
            server_verifier: WebPkiServerVerifier::builder_with_provider(roots, provider).build()?,
        })
    }
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The current set and the files it came from (none for a set built from DER).
struct Credentials {
    current: RwLock<Arc<Loaded>>,
    files: Option<[PathBuf; 3]>,
}

impl Credentials {
    fn get(&self) -> Arc<Loaded> {
        self.current.read().expect("peer credentials lock").clone()
    }

    fn reload(&self) -> anyhow::Result<()> {
        let Some([cert, key, ca]) = &self.files else {
            return Ok(());
        };
        let (chain, key, ca) = read_files(cert, key, ca)?;
        *self.current.write().expect("peer credentials lock") = Arc::new(Loaded::build(chain, key, ca)?);
        Ok(())
    }
}

type Files = (
    Vec<CertificateDer<'static>>,
    PrivateKeyDer<'static>,
    Vec<CertificateDer<'static>>,
);

fn read_files(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<Files> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    let ca_certs = CertificateDer::pem_file_iter(ca)
        .with_context(|| format!("reading {}", ca.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", ca.display()))?;
    Ok((chain, key, ca_certs))
}

impl PeerTls {
    /// Reads the replica's PEM certificate chain and private key and the peer CA bundle.
    pub fn load(cert: &Path, key: &Path, ca: &Path) -> anyhow::Result<PeerTls> {
        let (chain, key_der, ca_certs) = read_files(cert, key, ca)?;
        let loaded =
            Loaded::build(chain, key_der, ca_certs).with_context(|| format!("peer TLS from {}", cert.display()))?;
        PeerTls::from_credentials(Credentials {
            current: RwLock::new(Arc::new(loaded)),
            files: Some([cert.to_path_buf(), key.to_path_buf(), ca.to_path_buf()]),
        })
    }

    /// Builds both configurations from DER: the replica's chain (leaf first), its key and the
    /// peer CA certificates. Such a set never reloads.
    pub fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca: Vec<CertificateDer<'static>>,
    ) -> anyhow::Result<PeerTls> {
        PeerTls::from_credentials(Credentials {
            current: RwLock::new(Arc::new(Loaded::build(chain, key, ca)?)),
            files: None,
        })
    }

    fn from_credentials(credentials: Credentials) -> anyhow::Result<PeerTls> {
        let credentials = Arc::new(credentials);
        let live = Arc::new(Live(credentials.clone()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)?
            .with_client_cert_verifier(live.clone())
            .with_cert_resolver(live.clone());
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(live.clone())
            .with_client_cert_resolver(live);
        Ok(PeerTls {
            server: Arc::new(server),
            client: Arc::new(client),
            credentials,
        })
    }

    /// Loads the files again now (an error keeps the old set).
    pub fn reload(&self) -> anyhow::Result<()> {
        self.credentials.reload()
    }

    /// Checks the files every [`RELOAD_INTERVAL`] until every clone of `self` is dropped.
    pub fn spawn_watch(&self) {
        let Some(files) = self.credentials.files.clone() else {
            return;
        };
        let me = Arc::downgrade(&self.credentials);
        tokio::spawn(async move {
            let stamps = || files.iter().map(|f| stamp(f)).collect::<Vec<_>>();
            let (mut last, mut failed) = (stamps(), None);
            loop {
                tokio::time::sleep(RELOAD_INTERVAL).await;
                let Some(me) = me.upgrade() else { return };
                let now = stamps();
                if now == last || failed.as_ref() == Some(&now) {
                    continue;
                }
                // A set that fails is tried again once any of its files changes again.
                match me.reload() {
                    Ok(()) => {
                        (last, failed) = (now, None);
                        tracing::info!(cert = %files[0].display(), "peer certificate reloaded");
                    }
                    Err(e) => {
                        failed = Some(now);
                        tracing::error!("keeping the old peer certificate: {e:#}");
                    }
                }
            }
        });
    }
}

/// Answers rustls from the current set, on every handshake: the certificate both sides present
/// and the CA both sides trust.
#[derive(Clone)]
struct Live(Arc<Credentials>);

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCredentials").finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Live {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get().key.clone())
    }
}

impl ResolvesClientCert for Live {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.get().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for Live {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        // The hints are only advice to the client; every replica has exactly one certificate.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.0
            .get()
            .client_verifier
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().client_verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().client_verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.get().client_verifier.supported_verify_schemes()
    }
}

impl ServerCertVerifier for Live {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.0
            .get()
            .server_verifier
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().server_verifier.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.get().server_verifier.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.get().server_verifier.supported_verify_schemes()
    }
}
