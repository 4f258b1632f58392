//! The serving certificate, swappable at run time: rustls asks [`ReloadingCert`] on every
//! handshake, and a background task reloads `--tls-cert-file` / `--tls-private-key-file` when
//! either file's modification time or size changes (checked every [`RELOAD_INTERVAL`]). A pair
//! that fails to load or whose key does not match keeps the old certificate, with an error log.

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// How often the certificate files are checked for changes; defined with the peer credentials'
/// watcher, which checks at the same pace.
pub use crate::peer::transport::tls::RELOAD_INTERVAL;

/// A PEM chain and key as rustls signs with them.
pub fn certified_key(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> anyhow::Result<CertifiedKey> {
    let provider = rustls::crypto::ring::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).context("certificate and key")?;
    Ok(key)
}

pub fn load_pair(cert: &Path, key: &Path) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading {}", key.display()))?;
    Ok((chain, key))
}

#[derive(Debug)]
pub struct ReloadingCert {
    current: RwLock<Arc<CertifiedKey>>,
    /// The files to watch; `None` for a certificate that never changes (self-signed).
    files: Option<(PathBuf, PathBuf)>,
}

type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl ReloadingCert {
    pub fn new(key: CertifiedKey, files: Option<(PathBuf, PathBuf)>) -> Arc<Self> {
        Arc::new(ReloadingCert {
            current: RwLock::new(Arc::new(key)),
            files,
        })
    }

    /// Loads the files again now.
    pub fn reload(&self) -> anyhow::Result<()> {
        let Some((cert, key)) = &self.files else { return Ok(()) };
        let (chain, key) = load_pair(cert, key)?;
        *self.current.write().expect("cert lock") = Arc::new(certified_key(chain, key)?);
        Ok(())
    }

    /// Checks the files every [`RELOAD_INTERVAL`] until `self` is dropped elsewhere.
    pub fn spawn_watch(self: &Arc<Self>) {
        let Some((cert, key)) = self.files.clone() else { return };
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last: (Stamp, Stamp) = (stamp(&cert), stamp(&key));
            let mut failed = None;
            loop {
                tokio::time::sleep(RELOAD_INTERVAL).await;
                let Some(me) = me.upgrade() else { return };
                let now = (stamp(&cert), stamp(&key));
                if now == last || failed == Some(now) {
                    continue;
                }
                // A pair that fails (half written, mismatched) is tried again once either file
                // changes again.
                match me.reload() {
                    Ok(()) => {
                        (last, failed) = (now, None);
                        tracing::info!(cert = %cert.display(), "serving certificate reloaded");
                    }
                    Err(e) => {
                        failed = Some(now);
                        tracing::error!("keeping the old serving certificate: {e:#}");
                    }
                }
            }
        });
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("cert lock").clone())
    }
}
